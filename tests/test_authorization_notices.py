"""What store authorization tells: a push's notices of a store's consent counted by change
and logged, one line each; the refusals an operator reads; the lines of an authorization
and of a refused renewal; each channel's renewal backoff, on its own failures alone, and
the line that says which store, platform, wait and failure."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.test_authorization_worker import (
    LIFETIME_S,
    MINUTE,
    NAME,
    SECOND,
    T0,
    Authorizing,
    counted,
    notice,
    send,
)
from tests.test_authorization_worker import authorizing as authorizing  # the fixture
from waimai_bridge.pipeline.credentials import NotAuthorizing, StateRefused
from waimai_bridge.store.database import Database


def test_each_notice_is_counted_by_its_change_and_logged(
    authorizing: Authorizing, caplog: pytest.LogCaptureFixture
) -> None:
    authorizing.authorize("S001")

    def notices(change: str) -> float:
        return counted("waimai_channel_notices_total", platform=NAME, change=change)

    before = {change: notices(change) for change in ("withdrawn", "restored")}
    client = authorizing.client()
    caplog.set_level(logging.INFO, logger="waimai_bridge.pipeline.credentials")
    assert send(client, notice("auth.withdrawn")).status_code == 200
    assert send(client, notice("auth.restored")).status_code == 200
    assert {change: notices(change) - count for change, count in before.items()} == {
        "withdrawn": 1,
        "restored": 1,
    }
    assert [r.getMessage() for r in caplog.records if "consent" in r.getMessage()] == [
        f"store S001 withdrew its consent on {NAME}",
        f"store S001 gave back its consent on {NAME}",
    ]


def test_what_an_authorization_says_when_it_is_refused_or_succeeds(
    authorizing: Authorizing, caplog: pytest.LogCaptureFixture
) -> None:
    authorizations = authorizing.bridge.authorizations
    with pytest.raises(NotAuthorizing) as unbound:
        authorizations.start(NAME, "S404")
    assert str(unbound.value) == f"store 'S404' is not bound to {NAME} in the config"
    with pytest.raises(StateRefused) as refused:
        authorizations.complete(NAME, "never-issued", "code-1")
    assert str(refused.value) == "this authorization link is unknown, used already or expired"

    caplog.set_level(logging.INFO, logger="waimai_bridge.pipeline.credentials")
    authorizing.authorize("S001")
    authorizing.endpoint.refusing = True
    authorizing.now = T0 + LIFETIME_S * SECOND - 30 * MINUTE
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert done.refused == [f"{NAME}/S001"]
    assert [r.getMessage() for r in caplog.records if "store S001" in r.getMessage()] == [
        f"store S001 authorized on {NAME}",
        f"store S001 is unauthorized on {NAME}: the platform refused to renew its credentials "
        "(PlatformRejected invalid_grant)",
    ]


def test_each_channel_waits_after_its_own_failures(
    authorizing: Authorizing, caplog: pytest.LogCaptureFixture
) -> None:
    authorizing.authorize("S001")
    authorizing.endpoint.down = True
    authorizing.now = T0 + LIFETIME_S * SECOND - 30 * MINUTE
    for _ in range(3):  # S001 fails three times: its next wait is the longest
        done = authorizing.bridge.renewer.round()
        assert done is not None
        assert done.failed == [f"{NAME}/S001"]
        authorizing.now += 120 * SECOND
    assert authorizing.channel("S001").failures == 3

    authorizing.endpoint.down = False
    authorizing.authorize("S002")
    authorizing.endpoint.down = True
    authorizing.now += LIFETIME_S * SECOND - 30 * MINUTE  # both due now
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="waimai_bridge.pipeline.credentials")
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert sorted(done.failed) == [f"{NAME}/S001", f"{NAME}/S002"]
    lines = sorted(
        record.getMessage()
        for record in caplog.records
        if "renewal of store" in record.getMessage()
    )
    site = r"TransientPlatformError at \S+\.py:\d+"
    assert len(lines) == 2
    assert re.fullmatch(rf"renewal of store S001 on {NAME} failed, tried again in 120 s: {site}",
                        lines[0])  # fmt: skip
    assert re.fullmatch(rf"renewal of store S002 on {NAME} failed, tried again in 30 s: {site}",
                        lines[1])  # fmt: skip
    assert (authorizing.channel("S001").failures, authorizing.channel("S002").failures) == (4, 1)


def test_an_action_whose_stored_credentials_no_key_opens_fails_and_says_why(
    authorizing: Authorizing, database: Database, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    authorizing.authorize("S001")
    (tmp_path / "rekeyed").mkdir()
    rekeyed = Authorizing(database, tmp_path / "rekeyed")  # configured with another key
    try:
        calls = len(rekeyed.platform.calls)
        with caplog.at_level(logging.WARNING, logger="waimai_bridge.pipeline.actions"):
            failed = rekeyed.act("S001")
        assert (failed.status, failed.result_code, failed.attempts) == (
            "failed", "NOT_CONFIGURED", 1,
        )  # fmt: skip
        assert failed.result_message is not None
        assert failed.result_message.startswith("none of the configured keys opens the stored")
        assert len(rekeyed.platform.calls) == calls
        assert [(r.levelno, r.getMessage()) for r in caplog.records
                if r.name.endswith(".actions")] == [(
            logging.ERROR,
            f"action {failed.id} failed: the config of store S001 on {NAME} cannot be read: "
            "SealingUnavailable",
        )]  # fmt: skip
    finally:
        rekeyed.close()

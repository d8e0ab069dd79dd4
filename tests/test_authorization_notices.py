"""A push's notices of a store's consent are counted by change and logged, one line each,
naming the store, what it did and the platform."""

from __future__ import annotations

import logging

import pytest

from tests.test_authorization_worker import NAME, Authorizing, counted, notice, send
from tests.test_authorization_worker import authorizing as authorizing  # the fixture


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

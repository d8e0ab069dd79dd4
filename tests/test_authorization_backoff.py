"""Each channel backs off on its own failed renewals: a store's wait doubles with its own
failures, not another store's of the same platform, and the log line says which store,
which platform, how long and where it failed."""

from __future__ import annotations

import logging
import re

import pytest

from tests.test_authorization_worker import (
    LIFETIME_S,
    MINUTE,
    NAME,
    SECOND,
    T0,
    Authorizing,
)
from tests.test_authorization_worker import authorizing as authorizing  # the fixture


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

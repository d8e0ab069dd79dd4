"""A channel's anomalies in the store: opened once while open, about a store's channel and
no order, resolved for that channel alone, each told to subscribers."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tests.test_pipeline_mutants import counted
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import anomalies
from waimai_bridge.store.anomalies import DETAIL_LENGTH
from waimai_bridge.store.database import Database
from waimai_bridge.store.subscriptions import subscribe
from waimai_bridge.store.tables import Delivery

NOW = 1_716_181_200_000
RULE = AnomalyRule.CHANNEL_UNAUTHORIZED


def subscribed(database: Database) -> None:
    """A subscription to every update (in a transaction of its own, as the API makes one)."""
    with database.transaction() as session:
        subscribe(session, url="https://subscriber.example.com/hook", secret="s" * 16,
                  store_ids=None, platforms=None, states=None, now_ms=NOW)  # fmt: skip


def told(database: Database) -> list[dict[str, Any]]:
    """What subscribers were told, oldest first."""
    with database.transaction() as session:
        return [
            json.loads(body)
            for body in session.scalars(select(Delivery.body).order_by(Delivery.id))
        ]


def test_a_channels_anomaly_opens_once_and_tells_subscribers_of_the_channel(
    database: Database,
) -> None:
    subscribed(database)
    with database.transaction() as session:
        assert anomalies.open_channel(session, "testpay", "S001", RULE, "x" * 600, now_ms=NOW)
        assert not anomalies.open_channel(session, "testpay", "S001", RULE, "again", now_ms=NOW + 1)
        [listed] = anomalies.listing(session)
    assert (listed.rule, listed.platform, listed.store_id) == (RULE.value, "testpay", "S001")
    assert (listed.order_id, listed.platform_order_id) == (None, None)
    assert (listed.detail, listed.opened_at_ms, listed.resolved_at_ms) == (
        "x" * DETAIL_LENGTH, NOW, None,
    )  # fmt: skip
    assert told(database) == [
        {
            "type": "anomaly.opened", "anomalyId": listed.anomaly_id, "rule": RULE.value,
            "detail": "x" * DETAIL_LENGTH, "orderId": None, "platform": "testpay",
            "platformOrderId": None, "storeId": "S001", "openedAt": NOW, "resolvedAt": None,
            "timestamp": NOW,
        }
    ]  # fmt: skip


def test_a_channels_anomaly_resolves_for_that_channel_alone_and_may_open_again(
    database: Database,
) -> None:
    with database.transaction() as session:
        for platform, store in [("testpay", "S001"), ("testpay", "S002"), ("otherpay", "S001")]:
            assert anomalies.open_channel(session, platform, store, RULE, "refused", now_ms=NOW)
    subscribed(database)
    with database.transaction() as session:
        assert anomalies.resolve_channel(session, "testpay", "S001", RULE, now_ms=NOW + 5) == 1
        assert anomalies.resolve_channel(session, "testpay", "S001", RULE, now_ms=NOW + 6) == 0
        still_open = {(a.platform, a.store_id) for a in anomalies.listing(session, is_open=True)}
        assert still_open == {("testpay", "S002"), ("otherpay", "S001")}
        assert anomalies.open_channel(session, "testpay", "S001", RULE, "again", now_ms=NOW + 7)
    resolved, reopened = told(database)
    assert (resolved["type"], resolved["storeId"], resolved["resolvedAt"]) == (
        "anomaly.resolved", "S001", NOW + 5,
    )  # fmt: skip
    assert (reopened["type"], reopened["detail"], reopened["openedAt"]) == (
        "anomaly.opened", "again", NOW + 7,
    )  # fmt: skip


def test_resolving_counts_and_tells_only_the_open_anomalies_it_was_given(
    database: Database,
) -> None:
    with database.transaction() as session:
        for store in ("S001", "S002"):
            assert anomalies.open_channel(session, "testpay", store, RULE, "refused", now_ms=NOW)
        older, newer = sorted(a.anomaly_id for a in anomalies.listing(session))
    subscribed(database)
    before = counted("waimai_anomalies_total", rule=RULE.value, change="resolved")
    with database.transaction() as session:
        assert anomalies.resolve(session, [older], NOW + 5) == 1
        assert anomalies.resolve(session, [older], NOW + 6) == 0, "resolved already"
    with database.transaction() as session:
        shown = {a.anomaly_id: a.resolved_at_ms for a in anomalies.listing(session)}
    assert shown == {older: NOW + 5, newer: None}
    assert [(update["anomalyId"], update["type"]) for update in told(database)] == [
        (older, "anomaly.resolved")
    ]
    assert counted("waimai_anomalies_total", rule=RULE.value, change="resolved") == before + 1

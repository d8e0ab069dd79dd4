"""The gauges read from the database at scrape time: each one's value against rows written
as the store keeps them, beside rows that each miss it by one condition."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.test_anomaly_conditions import NOW, platform_order
from tests.test_dashboard import documented
from tests.test_retention import add_delivery, add_inbox
from tests.test_store_mutants import outbound_action
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import gauges as gauges_module
from waimai_bridge.store.actions import ActionStatus
from waimai_bridge.store.database import Database
from waimai_bridge.store.gauges import FRESH_S, DatabaseGauges
from waimai_bridge.store.tables import Anomaly, ChannelCredentials

HOLD_MS = 60_000
OVERDUE_MS = 30_000
LATE = NOW - HOLD_MS - OVERDUE_MS
"""A hold started before this is overdue."""
AHEAD_MS = 600_000

Samples = dict[tuple[str, tuple[str, ...]], float]


def collector(database: Database) -> DatabaseGauges:
    return DatabaseGauges(
        database, shards=3, stores=frozenset({"S001", "S002"}), accept_hold_ms=HOLD_MS,
        overdue_after_ms=OVERDUE_MS, clock=lambda: NOW, renew_ahead_ms=AHEAD_MS,
    )  # fmt: skip


def read(database: Database, gauges: DatabaseGauges | None = None) -> Samples:
    """Every sample of one scrape (of a new collector unless given), by metric and label
    values."""
    gauges = gauges or collector(database)
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for metric in gauges.collect()
        for sample in metric.samples
    }


def of(samples: Samples, name: str) -> dict[tuple[str, ...], float]:
    return {labels: value for (metric, labels), value in samples.items() if metric == name}


def test_the_inbox_gauges_count_each_configured_shard_s_waiting_events_and_the_oldest_age(
    database: Database,
) -> None:
    for key, shard, status, received_at_ms in [
        ("a", 0, "pending", NOW - 30_500),
        ("b", 0, "pending", NOW - 10_000),
        ("c", 1, "pending", NOW + 5_000),  # stamped by a clock ahead of ours
        ("d", 2, "done", NOW - 60_000),
        ("e", 2, "failed", NOW - 60_000),
        ("f", 7, "pending", NOW - 60_000),  # a shard no longer configured
    ]:
        add_inbox(database, key, status, None, shard=shard, received_at_ms=received_at_ms)
    samples = read(database)
    assert of(samples, "waimai_inbox_pending") == {("0",): 2, ("1",): 1, ("2",): 0}
    assert of(samples, "waimai_inbox_oldest_pending_age_seconds") == {
        ("0",): 30.5, ("1",): 0, ("2",): 0,
    }  # fmt: skip


def test_the_hold_gauges_count_held_orders_and_those_overdue_past_the_resend_time(
    database: Database,
) -> None:
    with database.transaction() as session:
        session.add_all([
            platform_order("FRESH", hold_started_at_ms=NOW - 10_000),
            platform_order("AT-EDGE", hold_started_at_ms=LATE),
            platform_order("OVERDUE", hold_started_at_ms=LATE - 1),
            platform_order("DISCARDED", hold_started_at_ms=LATE - 1, discarded=True),
            platform_order("STORED", hold_started_at_ms=LATE - 1, order={}),
            platform_order("NOT-ACCEPTED"),
        ])  # fmt: skip
    samples = read(database)
    assert of(samples, "waimai_held_orders") == {(): 3}
    assert of(samples, "waimai_overdue_releases") == {(): 1}


def test_dead_letters_are_counted_by_kind_and_pending_deliveries_apart(
    database: Database,
) -> None:
    add_inbox(database, "parked", "failed", None)
    add_inbox(database, "done", "done", NOW)
    with database.transaction() as session:
        session.add_all([
            outbound_action(1, ActionStatus.FAILED), outbound_action(2, ActionStatus.FAILED),
            outbound_action(3, ActionStatus.PENDING),
        ])  # fmt: skip
    for label, status in [("x", "dead"), ("y", "pending"), ("z", "pending"), ("w", "delivered")]:
        add_delivery(database, label, status, NOW if status == "delivered" else None)
    samples = read(database)
    assert of(samples, "waimai_dead_letters") == {
        ("inbox",): 1, ("actions",): 2, ("deliveries",): 1,
    }  # fmt: skip
    assert of(samples, "waimai_deliveries_pending") == {(): 2}


def test_open_anomalies_are_counted_by_rule_and_by_store_with_unknown_stores_as_other(
    database: Database,
) -> None:
    own, elsewhere = platform_order("OWN"), platform_order("ELSEWHERE", store_id="S009")
    with database.transaction() as session:
        session.add_all([own, elsewhere])
        session.flush()
        opened = [
            (own.id, None, AnomalyRule.NOT_ACCEPTED, None),
            (own.id, None, AnomalyRule.UNMAPPED_SKU, None),
            (elsewhere.id, None, AnomalyRule.NOT_ACCEPTED, None),
            (None, "S002", AnomalyRule.CHANNEL_UNAUTHORIZED, None),
            (own.id, None, AnomalyRule.NO_RIDER, NOW),  # resolved
        ]
        session.add_all(
            Anomaly(platform_order_pk=pk, platform=None if pk else "testpay", store_id=store_id,
                    kind=rule, detail=rule, created_at_ms=NOW, resolved_at_ms=resolved)
            for pk, store_id, rule, resolved in opened
        )  # fmt: skip
    samples = read(database)
    assert of(samples, "waimai_anomalies_open") == {
        (rule.value,): {"not_accepted": 2, "unmapped_sku": 1, "channel_unauthorized": 1}.get(
            rule.value, 0
        )
        for rule in AnomalyRule
    }
    assert of(samples, "waimai_store_anomalies_open") == {
        ("S001",): 2, ("S002",): 1, ("other",): 1,
    }  # fmt: skip


def credentials(
    platform: str, store_id: str, status: str, expires: int | None
) -> ChannelCredentials:
    return ChannelCredentials(
        platform=platform, store_id=store_id, status=status, access_token="sealed",
        refresh_token=None, expires_at_ms=expires, scope=None, authorized_at_ms=NOW,
        updated_at_ms=NOW, failures=0, retry_at_ms=None, problem=None,
    )  # fmt: skip


@pytest.mark.parametrize("expiring_at", [NOW + AHEAD_MS, NOW - 1])
def test_channels_are_counted_by_platform_and_status_expiring_within_the_renewal_time(
    database: Database, expiring_at: int
) -> None:
    with database.transaction() as session:
        session.add_all([
            credentials("testpay", "S001", "active", NOW + AHEAD_MS + 1),
            credentials("testpay", "S002", "active", expiring_at),
            credentials("testpay", "S003", "unauthorized", NOW + AHEAD_MS + 1),
            credentials("testpay", "S004", "unauthorized", NOW),  # unauthorized comes first
            credentials("otherpay", "S001", "active", None),  # a token that does not expire
        ])  # fmt: skip
    assert of(read(database), "waimai_channels") == {
        ("otherpay", "active"): 1, ("otherpay", "expiring"): 0,
        ("otherpay", "unauthorized"): 0, ("testpay", "active"): 1,
        ("testpay", "expiring"): 1, ("testpay", "unauthorized"): 2,
    }  # fmt: skip


def test_one_reading_serves_the_scrapes_of_the_next_seconds(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]  # the monotonic clock's origin is undefined: it may be 0
    monkeypatch.setattr(gauges_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    gauges = collector(database)

    def waiting() -> float:
        add_inbox(database, f"k{clock[0]}", "pending", None)
        return of(read(database, gauges), "waimai_inbox_pending")[("0",)]

    assert waiting() == 1
    clock[0] += FRESH_S - 0.001
    assert waiting() == 1, "the last reading is still fresh"
    clock[0] += 0.001
    assert waiting() == 3


def test_each_gauge_is_the_series_the_operations_guide_documents(database: Database) -> None:
    add_inbox(database, "a", "pending", None)
    with database.transaction() as session:
        session.add(credentials("testpay", "S001", "active", None))
        session.add(Anomaly(platform_order_pk=None, platform="testpay", store_id="S001",
                            kind=AnomalyRule.CHANNEL_UNAUTHORIZED, detail="", created_at_ms=NOW,
                            resolved_at_ms=None))  # fmt: skip
    series = documented()
    read = list(collector(database).collect())
    assert [metric.name for metric in read] == [
        "waimai_inbox_pending", "waimai_inbox_oldest_pending_age_seconds", "waimai_held_orders",
        "waimai_overdue_releases", "waimai_dead_letters", "waimai_deliveries_pending",
        "waimai_anomalies_open", "waimai_store_anomalies_open", "waimai_channels",
    ]  # fmt: skip
    for metric in read:
        assert metric.type == series[metric.name].type == "gauge"
        assert metric.documentation, f"{metric.name} has no help text"
        assert metric.samples, metric.name
        for sample in metric.samples:
            assert set(sample.labels) == series[metric.name].labels, metric.name

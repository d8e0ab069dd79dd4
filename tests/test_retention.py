"""Retention on SQLite and PostgreSQL: old processed inbox rows, delivered updates and old
event payloads go, in batches; what is new, unprocessed or waiting for a person stays; the
orders keep their logs and their view; the dry run, the command and the purge's lease."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from tests.test_store import PRICE, event
from waimai_bridge.cli.main import cli
from waimai_bridge.clock import system_clock
from waimai_bridge.config import load_config
from waimai_bridge.models import PlatformState
from waimai_bridge.pipeline.retention import Purger
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.settings import RetentionSettings
from waimai_bridge.store import changes
from waimai_bridge.store.database import Database
from waimai_bridge.store.events import Incoming, apply_events
from waimai_bridge.store.holds import release_holds
from waimai_bridge.store.retention import DAY_MS, Cutoffs, Purged, purge
from waimai_bridge.store.tables import (
    Change,
    Delivery,
    InboxEvent,
    OrderEvent,
    PlatformOrder,
    Subscription,
)
from waimai_bridge.web.views import find_order

NOW = 1_716_181_200_000 + 40 * DAY_MS
OLD = NOW - 8 * DAY_MS
"""Older than the inbox and deliveries ages (7 days), younger than the payloads' (30)."""
ANCIENT = NOW - 31 * DAY_MS
"""Older than every age."""
RECENT = NOW - DAY_MS
SETTINGS = RetentionSettings(changes_days=0)
"""The defaults, the board's feed kept (its own test below)."""


def config_text(url: str, *, batch_size: int = 1000, days: str = "") -> str:
    return f"""
[bridge]
database_url = "{url}"

[retention]
interval_minutes = 60
batch_size = {batch_size}
changes_days = 0
{days}
"""


@pytest.fixture
def bridge(database: Database, tmp_path: Path) -> Iterator[Bridge]:
    """A bridge on ``database`` (no platforms) whose clock reads :data:`NOW`."""
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(database.url), "utf-8")
    registry = PluginRegistry.discover(blocked=())
    made = Bridge(load_config(path, registry), registry, clock=lambda: NOW)
    try:
        yield made
    finally:
        made.stop()


# --------------------------------------------------------------------------- rows


def add_inbox(
    database: Database, key: str, status: str, done_at_ms: int | None, *, shard: int = 0,
    received_at_ms: int | None = None,
) -> None:  # fmt: skip
    """An inbox event of shard ``shard``, received a second before it was done (or before
    now) unless ``received_at_ms`` says when."""
    received = (done_at_ms or NOW) - 1000 if received_at_ms is None else received_at_ms
    with database.transaction() as session:
        session.add(InboxEvent(
            platform="sample", idempotency_key=key, store_id="S001", shard=shard,
            platform_order_id=f"O-{key}", native_code="10", platform_time_ms=received,
            payload={"key": key}, received_at_ms=received, status=status, attempts=1,
            error="boom" if status == "failed" else None, enqueued_at_ms=received,
            done_at_ms=done_at_ms,
        ))  # fmt: skip


def add_delivery(database: Database, label: str, status: str, delivered_at_ms: int | None) -> None:
    created = (delivered_at_ms or NOW) - 1000
    with database.transaction() as session:
        subscription = session.scalars(select(Subscription)).first()
        if subscription is None:
            subscription = Subscription(url="https://example.com/hook", secret="s",
                                        store_ids=None, platforms=None, states=None,
                                        created_at_ms=created)  # fmt: skip
            session.add(subscription)
            session.flush()
        session.add(Delivery(
            subscription_id=subscription.id, order_id=None, kind="label", body=label,
            status=status, attempts=1, next_attempt_at_ms=created + 10, last_error=None,
            created_at_ms=created, delivered_at_ms=delivered_at_ms,
        ))  # fmt: skip


def add_order(database: Database, order: str, *received: int) -> int:
    """A stored order whose events (created, accepted, then delivering …) arrived at
    ``received``; its id."""
    states = [PlatformState.CREATED, PlatformState.ACCEPTED, PlatformState.RIDER_DELIVERING,
              PlatformState.COMPLETED]  # fmt: skip
    with database.transaction() as session:
        for position, at_ms in enumerate(received):
            item = event(states[position], position, order=order)
            price = PRICE if position == 0 else None
            apply_events(session, [Incoming(item, at_ms, price)], accept_hold_ms=0)
        [released] = release_holds(
            session, [("sample", order)], accept_hold_ms=0, now_ms=received[1]
        )
        assert released.order_id is not None
        return released.order_id


def inbox_keys(database: Database) -> list[str]:
    with database.transaction() as session:
        return sorted(session.scalars(select(InboxEvent.idempotency_key)))


def delivery_labels(database: Database) -> list[str]:
    """The deliveries :func:`add_delivery` added (not the updates of the orders)."""
    with database.transaction() as session:
        return sorted(session.scalars(select(Delivery.body).where(Delivery.kind == "label")))


def payloads(database: Database, order: str) -> list[dict[str, Any]]:
    with database.transaction() as session:
        statement = (
            select(OrderEvent.payload)
            .join(PlatformOrder, PlatformOrder.id == OrderEvent.platform_order_pk)
            .where(PlatformOrder.platform_order_id == order)
            .order_by(OrderEvent.id)
        )
        return list(session.scalars(statement))


def purged_total(what: str) -> float:
    return REGISTRY.get_sample_value("waimai_purged_rows_total", {"what": what}) or 0.0


def some_of_everything(database: Database) -> dict[str, int]:
    """Rows of every kind, old and new, processed and not; the orders' ids."""
    add_inbox(database, "old-done", "done", OLD)
    add_inbox(database, "old-discarded", "discarded", OLD)
    add_inbox(database, "new-done", "done", RECENT)
    add_inbox(database, "old-pending", "pending", None)
    add_inbox(database, "old-failed", "failed", OLD)
    add_inbox(database, "old-retried-done", "done", RECENT)
    with database.transaction() as session:  # waiting, parked or retried since long ago
        session.execute(text("UPDATE inbox SET received_at_ms = :t, enqueued_at_ms = :t "
                             "WHERE idempotency_key LIKE 'old-%'"), {"t": OLD - 1000})  # fmt: skip
    add_delivery(database, "old-done", "done", OLD)
    add_delivery(database, "new-done", "done", RECENT)
    add_delivery(database, "old-pending", "pending", None)
    add_delivery(database, "old-dead", "dead", None)
    add_delivery(database, "old-retried-done", "done", RECENT)
    with database.transaction() as session:
        session.execute(
            text("UPDATE deliveries SET created_at_ms = :t, next_attempt_at_ms = :t "
                 "WHERE body LIKE 'old-%' AND body <> 'old-done'"), {"t": OLD},
        )  # fmt: skip
    return {
        "quiet": add_order(database, "Q-1", ANCIENT, ANCIENT + 1000, ANCIENT + 2000),
        "moving": add_order(database, "M-1", ANCIENT, ANCIENT + 1000, RECENT),
    }


# --------------------------------------------------------------------------- tests


def test_old_processed_rows_go_and_new_or_unprocessed_ones_stay(bridge: Bridge) -> None:
    database = bridge.database
    some_of_everything(database)
    before = {what: purged_total(what) for what in ("inbox", "deliveries", "payloads")}

    done = Purger(bridge.pipeline).round()

    assert done == Purged(inbox=2, deliveries=1, payloads=5)
    assert inbox_keys(database) == ["new-done", "old-failed", "old-pending", "old-retried-done"]
    assert delivery_labels(database) == ["new-done", "old-dead", "old-pending", "old-retried-done"]
    after = {what: purged_total(what) - before[what] for what in before}
    assert after == {"inbox": 2, "deliveries": 1, "payloads": 5}


def test_old_payloads_are_emptied_while_the_events_and_the_orders_view_stay(
    bridge: Bridge,
) -> None:
    database = bridge.database
    orders = some_of_everything(database)
    with database.transaction() as session:
        views = {name: find_order(session, order_id) for name, order_id in orders.items()}

    purge(database, Cutoffs.of(SETTINGS, NOW), batch_size=1000)

    assert payloads(database, "Q-1") == [{}, {}, {}]
    assert payloads(database, "M-1") == [{}, {}, {"position": 2}]
    with database.transaction() as session:
        after = {name: find_order(session, order_id) for name, order_id in orders.items()}
    assert after == views
    assert views["quiet"] is not None
    assert len(views["quiet"].events or []) == 3

    again = purge(database, Cutoffs.of(SETTINGS, NOW), batch_size=1000)
    assert again == Purged(), "what was purged is not purged again"


def test_an_order_whose_last_event_ages_loses_that_payload_then(bridge: Bridge) -> None:
    database = bridge.database
    add_order(database, "M-1", ANCIENT, ANCIENT + 1000, RECENT)
    purge(database, Cutoffs.of(SETTINGS, NOW), batch_size=1000)
    assert payloads(database, "M-1") == [{}, {}, {"position": 2}]

    later = Cutoffs.of(SETTINGS, NOW + 30 * DAY_MS)
    assert purge(database, later, batch_size=1000) == Purged(payloads=1)
    assert payloads(database, "M-1") == [{}, {}, {}]


def test_everything_old_goes_in_batches(bridge: Bridge) -> None:
    database = bridge.database
    for number in range(5):
        add_inbox(database, f"done-{number}", "done", OLD)
        add_delivery(database, f"done-{number}", "done", OLD)
    add_order(database, "Q-1", *(ANCIENT + n for n in range(4)))
    add_order(database, "Q-2", ANCIENT + 10, ANCIENT + 11)
    batches: list[tuple[str, int]] = []

    done = purge(database, Cutoffs.of(SETTINGS, NOW), batch_size=2,
                 progress=lambda kind, rows: batches.append((kind, rows)))  # fmt: skip

    assert done == Purged(inbox=5, deliveries=5, payloads=6)
    assert batches == [
        ("inbox", 2), ("inbox", 2), ("inbox", 1),
        ("deliveries", 2), ("deliveries", 2), ("deliveries", 1),
        ("payloads", 2), ("payloads", 2), ("payloads", 2), ("payloads", 0),
    ]  # fmt: skip
    assert inbox_keys(database) == []
    assert delivery_labels(database) == []
    assert payloads(database, "Q-1") + payloads(database, "Q-2") == [{}] * 6


def test_a_dry_run_counts_what_the_purge_then_removes_and_changes_nothing(
    bridge: Bridge,
) -> None:
    database = bridge.database
    some_of_everything(database)
    cutoffs = Cutoffs.of(SETTINGS, NOW)

    counted = purge(database, cutoffs, batch_size=2, dry_run=True)

    assert counted == Purged(inbox=2, deliveries=1, payloads=5)
    assert len(inbox_keys(database)) == 6
    assert len(delivery_labels(database)) == 5
    assert {"position": 0} in payloads(database, "Q-1")
    assert purge(database, cutoffs, batch_size=2) == counted


def test_an_age_of_zero_keeps_its_kind_for_ever(bridge: Bridge) -> None:
    database = bridge.database
    some_of_everything(database)
    forever = RetentionSettings(inbox_days=0, deliveries_days=0, payloads_days=0, changes_days=0)
    cutoffs = Cutoffs.of(forever, NOW)
    assert list(cutoffs) == [
        ("inbox", None),
        ("deliveries", None),
        ("payloads", None),
        ("changes", None),
    ]
    assert purge(database, cutoffs, batch_size=10) == Purged()
    assert len(inbox_keys(database)) == 6
    only_inbox = Cutoffs.of(
        RetentionSettings(deliveries_days=0, payloads_days=0, changes_days=0), NOW
    )
    assert purge(database, only_inbox, batch_size=10) == Purged(inbox=2)


def test_one_purger_at_a_time(bridge: Bridge) -> None:
    purger, other = Purger(bridge.pipeline), Purger(bridge.pipeline)
    assert purger.interval_s == 3600
    assert purger.round() == Purged()
    assert other.round() is None, "the lease is held"
    assert purger.round() is not None, "the holder goes on"


def test_the_payload_purge_reads_only_payloads_not_emptied_yet(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    database.migrate()
    try:
        with database.connection() as connection:
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM order_events "
                "WHERE CAST(payload AS TEXT) <> '{}' AND received_at_ms < 5 LIMIT 2"
            ).all()
        assert "ix_order_events_payload_kept" in str(plan)
    finally:
        database.dispose()


def test_the_purge_command(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("WAIMAI_CONFIG", "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL"):
        monkeypatch.delenv(variable, raising=False)
    now = system_clock()
    for number in range(3):
        add_inbox(database, f"old-{number}", "done", now - 8 * DAY_MS)
    add_inbox(database, "new", "done", now - DAY_MS)
    add_delivery(database, "old", "done", now - 8 * DAY_MS)
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(database.url, batch_size=2, days="payloads_days = 0"), "utf-8")
    runner = CliRunner()

    dry = runner.invoke(cli, ["--config", str(path), "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "inbox: 3 processed inbox rows done before" in dry.output
    assert "deliveries: 1 delivered subscriber updates delivered before" in dry.output
    assert "would be deleted" in dry.output
    assert "payloads: event payloads kept for ever (payloads_days = 0)" in dry.output
    assert len(inbox_keys(database)) == 4

    real = runner.invoke(cli, ["--config", str(path), "purge"])
    assert real.exit_code == 0, real.output
    assert "inbox: 3 processed inbox rows done before" in real.output
    assert "would be" not in real.output
    assert inbox_keys(database) == ["new"]
    assert delivery_labels(database) == []


def test_the_board_feed_keeps_only_its_last_days(bridge: Bridge) -> None:
    database = bridge.database
    with database.transaction() as session:
        for age_days in (5, 3, 1):
            change = changes.Changed("testpay", f"O-{age_days}", "S001", None, changes.ORDER)
            changes.note(session, [change], NOW - age_days * DAY_MS)
    only_changes = RetentionSettings(
        inbox_days=0, deliveries_days=0, payloads_days=0, changes_days=2
    )
    dry = purge(database, Cutoffs.of(only_changes, NOW), batch_size=1, dry_run=True)
    assert dry == Purged(changes=2)
    assert purge(database, Cutoffs.of(only_changes, NOW), batch_size=1) == Purged(changes=2)
    with database.transaction() as session:
        assert [row.platform_order_id for row in changes.since(session, 0)] == ["O-1"]


def test_rows_at_the_cutoff_stay_and_go_a_millisecond_later(bridge: Bridge) -> None:
    database = bridge.database
    at = OLD
    with database.transaction() as session:  # each kept by one of its two times alone
        for key, enqueued, done_at in (("enqueued-at", at, at - 1), ("done-at", at - 1, at)):
            session.add(InboxEvent(
                platform="sample", idempotency_key=key, store_id="S001", shard=0,
                platform_order_id=f"O-{key}", native_code="10", platform_time_ms=at,
                payload={}, received_at_ms=enqueued, status="done", attempts=1, error=None,
                enqueued_at_ms=enqueued, done_at_ms=done_at,
            ))  # fmt: skip
    add_delivery(database, "next-at", "done", at - 1)
    add_delivery(database, "delivered-at", "done", at)
    with database.transaction() as session:
        session.execute(text("UPDATE deliveries SET created_at_ms = :t - 1"), {"t": at})
        session.execute(
            text("UPDATE deliveries SET next_attempt_at_ms = :t WHERE body = 'next-at'"),
            {"t": at},
        )
        session.execute(
            text("UPDATE deliveries SET next_attempt_at_ms = :t - 1 WHERE body = 'delivered-at'"),
            {"t": at},
        )
    add_order(database, "EDGE", at, at)
    with database.transaction() as session:
        session.execute(text("UPDATE changes SET created_at_ms = :t"), {"t": at})
        feed = len(session.scalars(select(Change)).all())
    assert feed >= 2

    exactly = Cutoffs(inbox=at, deliveries=at, payloads=at, changes=at)
    assert purge(database, exactly, batch_size=1000) == Purged(), "not older than the cutoff"

    batches: list[tuple[str, int]] = []
    later = Cutoffs(inbox=at + 1, deliveries=at + 1, payloads=at + 1, changes=at + 1)
    done = purge(
        database, later, batch_size=1, progress=lambda kind, rows: batches.append((kind, rows))
    )
    assert done == Purged(inbox=2, deliveries=2, payloads=2, changes=feed)
    assert [rows for kind, rows in batches if kind == "changes"] == [1] * feed + [0]
    assert {kind for kind, _ in batches} == {"inbox", "deliveries", "payloads", "changes"}

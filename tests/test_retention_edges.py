"""Retention at its edges: ages of a day or less still set a cutoff, a dry run reports its
progress kind by kind as the purge does, and a batch of payloads empties the oldest received
first."""

from __future__ import annotations

from sqlalchemy import select

from tests.test_retention import (
    ANCIENT,
    NOW,
    OLD,
    SETTINGS,
    add_delivery,
    add_inbox,
    add_order,
    payloads,
)
from waimai_bridge.settings import RetentionSettings
from waimai_bridge.store.database import Database
from waimai_bridge.store.retention import DAY_MS, Cutoffs, Purged, purge, purge_payloads
from waimai_bridge.store.tables import OrderEvent


def test_an_age_of_a_day_or_less_still_sets_a_cutoff() -> None:
    short = RetentionSettings(inbox_days=1, deliveries_days=0.5, payloads_days=1, changes_days=1)
    assert Cutoffs.of(short, NOW) == Cutoffs(
        inbox=NOW - DAY_MS,
        deliveries=NOW - DAY_MS // 2,
        payloads=NOW - DAY_MS,
        changes=NOW - DAY_MS,
    )


def test_a_dry_run_tells_its_progress_kind_by_kind(database: Database) -> None:
    add_inbox(database, "old-done", "done", OLD)
    add_inbox(database, "old-discarded", "discarded", OLD)
    add_delivery(database, "old-done", "done", OLD)
    told: list[tuple[str, int]] = []

    counted = purge(database, Cutoffs.of(SETTINGS, NOW), batch_size=1, dry_run=True,
                    progress=lambda kind, rows: told.append((kind, rows)))  # fmt: skip

    assert counted == Purged(inbox=2, deliveries=1)
    assert told == [("inbox", 2), ("deliveries", 1), ("payloads", 0)]  # changes: kept


def test_a_batch_of_payloads_empties_the_oldest_received_first(database: Database) -> None:
    add_order(database, "LATER", ANCIENT + 2000, ANCIENT + 3000)
    add_order(database, "EARLIER", ANCIENT, ANCIENT + 1000)  # logged after, received before
    with database.transaction() as session:
        assert purge_payloads(session, NOW, limit=1) == 1
    assert payloads(database, "EARLIER") == [{}, {"position": 1}]
    assert payloads(database, "LATER") == [{"position": 0}, {"position": 1}]
    with database.transaction() as session:
        assert purge_payloads(session, NOW, limit=2) == 2
        received = session.scalars(select(OrderEvent.received_at_ms).order_by(OrderEvent.id))
        assert list(received) == [ANCIENT + 2000, ANCIENT + 3000, ANCIENT, ANCIENT + 1000]
    assert payloads(database, "EARLIER") == [{}, {}]
    assert payloads(database, "LATER") == [{}, {"position": 1}]

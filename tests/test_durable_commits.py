"""Subscribers never hear of a change a crash can take back (SPEC §8).

Work that is done again when lost (applying inbox events, releasing holds) commits
without waiting for the disk. A transaction of that kind that writes an update for
subscribers, or creates an order whose id the chain's systems see, must still commit
durably: when its commit returns, its WAL is flushed.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from waimai_bridge.models import Event, PlatformState
from waimai_bridge.store import outbox, subscriptions
from waimai_bridge.store.database import Database
from waimai_bridge.store.events import Incoming, apply_events
from waimai_bridge.store.holds import Release, release_holds

T0 = 1_716_181_200_000


def _written_lsn(session: Session) -> str:
    """Where this transaction's WAL has got to, before its commit record."""
    return str(session.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one())


def _flushed_past(database: Database, lsn: str) -> bool:
    with database.engine.connect() as connection:
        statement = text("SELECT pg_current_wal_flush_lsn() >= CAST(:lsn AS pg_lsn)")
        return bool(connection.execute(statement, {"lsn": lsn}).scalar_one())


def _subscribe(database: Database) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, url="https://pos.example.com/hook", secret="s", store_ids=None,
            platforms=None, states=None, now_ms=T0,
        )  # fmt: skip


def test_a_relaxed_transaction_that_tells_subscribers_commits_durably(
    postgres_database: Database,
) -> None:
    _subscribe(postgres_database)
    for _ in range(5):  # the WAL writer may flush a relaxed commit early: never all five
        with postgres_database.transaction(durable=False) as session:
            outbox.order_update(
                session, order_id=1, platform="sample", store_id="S001", status="paid",
                previous_status=None, rider_state=None, version=1, now_ms=T0,
            )  # fmt: skip
            lsn = _written_lsn(session)
        assert _flushed_past(postgres_database, lsn)


def test_a_relaxed_transaction_that_stores_an_order_commits_durably(
    postgres_database: Database,
) -> None:
    for number in range(5):
        order = f"D{number}"
        accepted = Event(
            platform="sample", store_id="S001", platform_order_id=order, native_code="x",
            idempotency_key=f"{order}:1", platform_time_ms=T0, payload={},
            state=PlatformState.ACCEPTED,
        )  # fmt: skip
        with postgres_database.transaction(durable=False) as session:
            apply_events(session, [Incoming(accepted, T0)], accept_hold_ms=0)
        with postgres_database.transaction(durable=False) as session:
            [released] = release_holds(session, [("sample", order)], accept_hold_ms=0, now_ms=T0)
            lsn = _written_lsn(session)
        assert released.outcome is Release.STORED
        assert _flushed_past(postgres_database, lsn)


def test_relaxed_work_that_tells_nobody_stays_relaxed(postgres_database: Database) -> None:
    with postgres_database.transaction(durable=False) as session:
        setting = session.execute(text("SHOW synchronous_commit")).scalar_one()
    assert setting == "off"

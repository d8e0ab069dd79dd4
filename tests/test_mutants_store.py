"""The outbox as docs/subscribers.md states it, where the suite left mutants alive: which
subscriptions an update is written for, and when a failed delivery is tried again."""

from __future__ import annotations

from sqlalchemy import delete, select

from waimai_bridge.store import outbox, subscriptions
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Delivery

T0 = 1_700_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND

FILTERS: dict[str, dict[str, list[str] | None]] = {
    "everything": {},
    "store S001": {"store_ids": ["S001"]},
    "eleme": {"platforms": ["eleme"]},
    "meituan": {"platforms": ["meituan"]},
    "eleme or meituan": {"platforms": ["eleme", "meituan"]},
    "refunds": {"states": ["refunding", "refunded"]},
    "S002 meituan completed": {"store_ids": ["S002"], "platforms": ["meituan"],
                               "states": ["completed"]},
}  # fmt: skip
"""Subscriptions by name: absent filters let everything through."""


def _subscribe_all(database: Database) -> dict[int, str]:
    names: dict[int, str] = {}
    with database.transaction() as session:
        for name, filters in FILTERS.items():
            row = subscriptions.subscribe(
                session, url=f"https://pos.example.com/{len(names)}", secret="s" * 16,
                store_ids=filters.get("store_ids"), platforms=filters.get("platforms"),
                states=filters.get("states"), now_ms=T0,
            )  # fmt: skip
            names[row.id] = name
    return names


def _hearing(database: Database, names: dict[int, str]) -> set[str]:
    """The subscriptions the updates written so far are for; the outbox is emptied."""
    with database.transaction() as session:
        rows = session.execute(select(Delivery.subscription_id)).scalars().all()
        session.execute(delete(Delivery))
    assert len(rows) == len(set(rows)), "one delivery per subscription"
    return {names[subscription_id] for subscription_id in rows}


def _status(database: Database, *, store_id: str, platform: str, status: str) -> None:
    with database.transaction() as session:
        outbox.order_update(
            session, order_id=7, platform=platform, store_id=store_id, status=status,
            previous_status=None, rider_state=None, version=1, now_ms=T0,
        )  # fmt: skip


def test_an_order_update_is_written_for_the_subscriptions_whose_filters_it_passes(
    database: Database,
) -> None:
    names = _subscribe_all(database)
    _status(database, store_id="S001", platform="eleme", status="refunding")
    assert _hearing(database, names) == {
        "everything", "store S001", "eleme", "eleme or meituan", "refunds",
    }  # fmt: skip
    _status(database, store_id="S002", platform="meituan", status="completed")
    assert _hearing(database, names) == {
        "everything", "meituan", "eleme or meituan", "S002 meituan completed",
    }  # fmt: skip
    _status(database, store_id="S002", platform="own_pos", status="completed")
    assert _hearing(database, names) == {"everything"}
    _status(database, store_id="S003", platform="meituan", status="refunded")
    assert _hearing(database, names) == {"everything", "meituan", "eleme or meituan", "refunds"}


def _failed(database: Database, *, now_ms: int, give_up_ms: int) -> tuple[int | None, Delivery]:
    """The pending delivery taken at ``now_ms`` and failed: when it is due again, and it."""
    with database.transaction() as session:
        [row] = outbox.take_due(session, now_ms=now_ms, lease_ms=2 * MINUTE, limit=10)
        again = outbox.not_delivered(
            session, row, "HTTP 503: " + "x" * 2000, now_ms=now_ms,
            first_retry_ms=SECOND, give_up_ms=give_up_ms,
        )  # fmt: skip
    with database.transaction() as session:
        stored = session.execute(select(Delivery)).scalar_one()
    return again, stored


def test_a_failed_delivery_backs_off_doubling_to_five_minutes_then_dies(
    database: Database,
) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, url="https://pos.example.com/", secret="s" * 16,
            store_ids=None, platforms=None, states=None, now_ms=T0,
        )  # fmt: skip
    _status(database, store_id="S001", platform="eleme", status="paid")
    give_up_ms = 20 * MINUTE
    now, waits = T0, list[int]()
    while True:
        again, stored = _failed(database, now_ms=now, give_up_ms=give_up_ms)
        assert stored.attempts == len(waits) + 1
        assert stored.last_error is not None
        assert len(stored.last_error) == 1000
        if again is None:
            break
        assert (stored.status, stored.next_attempt_at_ms) == ("pending", again)
        with database.transaction() as session:
            assert outbox.take_due(session, now_ms=again - 1, lease_ms=MINUTE, limit=10) == []
            assert outbox.next_due_ms(session) == again
        waits.append(again - now)
        now = again
        assert len(waits) < 20, f"still retrying after {waits}"
    doubling = [SECOND * 2**n for n in range(9)]  # 1 s … 256 s
    assert waits[:9] == doubling
    assert set(waits[9:]) == {5 * MINUTE}
    assert now - T0 >= give_up_ms > now - T0 - 5 * MINUTE  # tried until the give-up time
    assert stored.status == "dead"
    with database.transaction() as session:
        assert [row.id for row in outbox.dead(session)] == [stored.id]
        assert outbox.next_due_ms(session) is None

"""Which orders pull compensation reads again (``store.pulls.refetch_due``), on SQLite and
PostgreSQL, at each bound: seen without the full order before the cutoff, or not settled
and unchanged since the cutoff; not read lately; of the platforms asked for; not
discarded; missing orders first, then the longest unchanged, at most ``limit``."""

from __future__ import annotations

from typing import Any

from waimai_bridge.models import OrderState
from waimai_bridge.store.database import Database
from waimai_bridge.store.pulls import SETTLED, fetched, refetch_due
from waimai_bridge.store.tables import Order, PlatformOrder

T0 = 1_780_000_000_000
MISSING_BEFORE = T0 + 10_000
STUCK_BEFORE = T0 + 20_000
FETCHED_BEFORE = T0 + 30_000
PRICE = {"user_paid": 100}


def add(
    database: Database,
    name: str,
    *,
    created: int = T0,
    updated: int | None = None,
    price: dict[str, Any] | None = None,
    state: OrderState | None = None,
    order_updated: int | None = None,
    discarded: bool = False,
    platform: str = "testpay",
    fetched_at: int | None = None,
) -> None:
    """A platform order (stored as an order in ``state`` when given)."""
    with database.transaction() as session:
        order_id = None
        if state is not None:
            order = Order(
                platform=platform, platform_order_id=name, store_id="S1", state=state.value,
                refunded_amount_fen=0, price=price, version=1, created_at_ms=created,
                updated_at_ms=order_updated if order_updated is not None else created,
            )  # fmt: skip
            session.add(order)
            session.flush()
            order_id = order.id
        session.add(
            PlatformOrder(
                platform=platform, platform_order_id=name, store_id="S1", price=price,
                order_id=order_id, discarded=discarded, created_at_ms=created,
                updated_at_ms=updated if updated is not None else created,
                fetched_at_ms=fetched_at,
            )
        )  # fmt: skip


def due(
    database: Database, limit: int = 50, platforms: tuple[str, ...] = ("testpay",)
) -> list[tuple[str, str]]:
    with database.transaction() as session:
        found = refetch_due(
            session, platforms, missing_before_ms=MISSING_BEFORE, stuck_before_ms=STUCK_BEFORE,
            fetched_before_ms=FETCHED_BEFORE, limit=limit,
        )  # fmt: skip
    return [(row.platform_order_id, row.why) for row in found]


def test_an_order_without_its_full_order_is_read_again_once_old_enough(database: Database) -> None:
    add(database, "JUST-BEFORE", created=MISSING_BEFORE - 1, updated=STUCK_BEFORE)
    add(database, "AT-CUTOFF", created=MISSING_BEFORE, updated=STUCK_BEFORE)
    add(database, "PRICED", created=T0, updated=STUCK_BEFORE, price=PRICE)
    add(database, "DISCARDED", created=T0, updated=STUCK_BEFORE, discarded=True)
    add(database, "OTHER", created=T0, updated=STUCK_BEFORE, platform="otherpay")
    assert due(database) == [("JUST-BEFORE", "no order")]
    assert due(database, platforms=()) == []
    assert due(database, platforms=("testpay", "otherpay")) == [
        ("JUST-BEFORE", "no order"), ("OTHER", "no order"),
    ]  # fmt: skip


def test_an_order_read_lately_waits_for_the_next_time(database: Database) -> None:
    add(database, "READ-LONG-AGO", fetched_at=FETCHED_BEFORE - 1)
    add(database, "READ-AT-CUTOFF", fetched_at=FETCHED_BEFORE)
    add(database, "NEVER-READ")
    assert sorted(due(database)) == [("NEVER-READ", "no order"), ("READ-LONG-AGO", "no order")]
    with database.transaction() as session:
        [pk] = [
            row.id for row in session.query(PlatformOrder).filter_by(platform_order_id="NEVER-READ")
        ]
        fetched(session, [pk], now_ms=FETCHED_BEFORE)
    assert due(database) == [("READ-LONG-AGO", "no order")]


def test_an_unsettled_order_unchanged_since_the_cutoff_is_read_again(database: Database) -> None:
    stale = STUCK_BEFORE - 1
    add(database, "HELD", price=PRICE, updated=stale - 1)  # waiting out its hold
    add(database, "HELD-FRESH", price=PRICE, updated=STUCK_BEFORE)
    add(database, "DISCARDED", price=PRICE, updated=stale, discarded=True)
    add(
        database,
        "PREPARING",
        price=PRICE,
        updated=T0,
        state=OrderState.PREPARING,
        order_updated=stale,
    )
    add(database, "PREPARING-FRESH", price=PRICE, updated=T0, state=OrderState.PREPARING,
        order_updated=STUCK_BEFORE)  # fmt: skip
    for settled in SETTLED:
        add(database, f"SETTLED-{settled.value}", price=PRICE, updated=T0, state=settled,
            order_updated=T0)  # fmt: skip
    add(database, "PARTLY-REFUNDED", price=PRICE, updated=T0,
        state=OrderState.PARTIALLY_REFUNDED, order_updated=T0 + 5)  # fmt: skip
    assert due(database) == [
        ("PARTLY-REFUNDED", "stuck"),  # changed longest ago first (its order's time)
        ("HELD", "stuck"), ("PREPARING", "stuck"),
    ]  # fmt: skip


def test_missing_orders_come_first_each_once_and_the_limit_holds(database: Database) -> None:
    add(database, "MISSING-AND-STUCK", created=T0, updated=T0)  # both: listed once, as missing
    add(database, "MISSING-2", created=T0 + 1, updated=STUCK_BEFORE)
    add(database, "STUCK", price=PRICE, created=T0, updated=T0 + 2)
    assert due(database) == [
        ("MISSING-AND-STUCK", "no order"), ("MISSING-2", "no order"), ("STUCK", "stuck"),
    ]  # fmt: skip
    assert due(database, limit=2) == [("MISSING-AND-STUCK", "no order"), ("MISSING-2", "no order")]
    assert due(database, limit=1) == [("MISSING-AND-STUCK", "no order")]
    assert due(database, limit=3) == due(database)


def test_the_stuck_orders_fill_what_the_missing_leave_of_the_limit(database: Database) -> None:
    add(database, "MISSING", created=T0, updated=STUCK_BEFORE)
    add(database, "STUCK-1", price=PRICE, created=T0, updated=T0 + 1)
    add(database, "STUCK-2", price=PRICE, created=T0, updated=T0 + 2)
    assert due(database, limit=2) == [("MISSING", "no order"), ("STUCK-1", "stuck")]

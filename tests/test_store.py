"""The order log on SQLite and PostgreSQL: applying events, the accept hold, items, locking."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select, text

from tests.conftest import clear
from tests.processes import wait_until
from tests.test_statemachine import E, lifecycles, log
from waimai_bridge.models import Event, OrderState, PlatformState, PriceBreakdown, RiderState
from waimai_bridge.statemachine import cancelled_before_completion, fold
from waimai_bridge.store.database import Database, alembic_config
from waimai_bridge.store.events import Incoming, apply_events
from waimai_bridge.store.holds import Release, release_due, release_holds
from waimai_bridge.store.order_log import lock_orders
from waimai_bridge.store.skus import SkuRow, import_skus
from waimai_bridge.store.tables import Anomaly, Base, Order, OrderEvent, OrderItem, PlatformOrder
from waimai_bridge.store.upsert import insert_ignoring_conflict, update_rows

P = PlatformState
HOLD_MS = 60_000
T0 = 1_716_181_200_000
ORDER_ID = "3084512398765432101"

PRICE = PriceBreakdown.model_validate(
    {
        "items": [
            {"sku_code": "SKU-1001", "platform_sku_id": "2001", "name": "宫保鸡丁", "quantity": 1,
             "unit_original": 2800, "unit_paid": 2800},
            {"sku_code": "SKU-2002", "platform_sku_id": "2002", "name": "可乐", "quantity": 2,
             "unit_original": 500, "unit_paid": 400},
            {"sku_code": None, "platform_sku_id": None, "name": "餐盒", "quantity": 1,
             "unit_original": 200, "unit_paid": 200},
        ],
        "original_amount": 4700,
        "packaging_fee": 200,
        "delivery_fee": 500,
        "merchant_discount": 300,
        "platform_discount": 100,
        "user_paid": 3790,
        "commission": 448,
        "merchant_income": 2542,
    }
)  # fmt: skip


def event(
    state: PlatformState | None,
    position: int,
    *,
    order: str = ORDER_ID,
    partial: bool = False,
    amount: int | None = None,
    key: str | None = None,
) -> Event:
    return Event(
        platform="sample",
        store_id="S001",
        platform_order_id=order,
        native_code=str(int(state)) if state is not None else "45",
        idempotency_key=key or f"{order}:{position}",
        platform_time_ms=T0 + position * 1000,
        payload={"position": position},
        state=state,
        partial=partial,
        refund_amount_fen=amount,
    )


def apply(
    database: Database, item: Event, received_at_ms: int, price: PriceBreakdown | None = None
) -> Any:
    with database.transaction() as session:
        [applied] = apply_events(
            session, [Incoming(item, received_at_ms, price)], accept_hold_ms=HOLD_MS
        )
        return applied


def release(database: Database, now_ms: int, order: str = ORDER_ID) -> Any:
    with database.transaction() as session:
        [released] = release_holds(
            session, [("sample", order)], accept_hold_ms=HOLD_MS, now_ms=now_ms
        )
        return released


def stored(database: Database, order: str = ORDER_ID) -> tuple[Order | None, PlatformOrder]:
    with database.transaction() as session:
        platform_order = session.execute(
            select(PlatformOrder).where(PlatformOrder.platform_order_id == order)
        ).scalar_one()
        return platform_order.order, platform_order


def count(database: Database, table: type[Base]) -> int:
    with database.transaction() as session:
        return session.execute(select(func.count()).select_from(table)).scalar_one()


# --------------------------------------------------------------------------- schema


def test_the_migrations_build_exactly_the_tables(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert context.get_current_revision() == head


def test_migrating_again_changes_nothing(database: Database) -> None:
    database.migrate()
    assert count(database, Order) == 0


# --------------------------------------------------------------------------- the accept hold


def test_an_accepted_order_is_stored_when_its_hold_is_over(database: Database) -> None:
    created = apply(database, event(P.CREATED, 0), T0, price=PRICE)
    assert created.release_at_ms is None
    assert stored(database)[0] is None
    accepted = apply(database, event(P.ACCEPTED, 1), T0 + 1000)
    assert accepted.release_at_ms == T0 + 1000 + HOLD_MS

    early = release(database, T0 + 1000 + HOLD_MS - 1)
    assert early.outcome is Release.NOT_YET
    assert early.release_at_ms == accepted.release_at_ms
    assert count(database, Order) == 0

    released = release(database, T0 + 1000 + HOLD_MS)
    assert released.outcome is Release.STORED
    order, platform_order = stored(database)
    assert order is not None
    assert (order.state, order.rider_state, order.version) == (OrderState.PAID, None, 1)
    assert order.price == PRICE.model_dump(mode="json")
    assert platform_order.state_code == P.ACCEPTED
    assert platform_order.order_id == released.order_id
    assert release(database, T0 + 10 * HOLD_MS).outcome is Release.ALREADY_STORED


@pytest.mark.parametrize("cancel", [P.CANCELLED, P.INVALIDATED, P.FORCE_INVALIDATED])
def test_an_order_cancelled_within_the_hold_is_never_stored(
    database: Database, cancel: PlatformState
) -> None:
    apply(database, event(P.CREATED, 0), T0, price=PRICE)
    apply(database, event(P.ACCEPTED, 1), T0 + 1000)
    apply(database, event(cancel, 30), T0 + 30_000)
    assert release(database, T0 + 1000 + HOLD_MS).outcome is Release.DISCARDED
    assert count(database, Order) == 0
    assert release(database, T0 + 5 * HOLD_MS).outcome is Release.DISCARDED
    apply(database, event(P.COMPLETED, 90), T0 + 90_000)
    assert count(database, Order) == 0


def test_a_cancel_received_in_the_holds_last_millisecond_counts(database: Database) -> None:
    apply(database, event(P.ACCEPTED, 1), T0)
    apply(database, event(P.CANCELLED, 60), T0 + HOLD_MS)
    assert release(database, T0 + HOLD_MS).outcome is Release.DISCARDED


def test_a_user_cancel_agreed_within_the_hold_is_never_stored(database: Database) -> None:
    apply(database, event(P.ACCEPTED, 1), T0)
    apply(database, event(P.CANCEL_REQUESTED, 10), T0 + 10_000)
    apply(database, event(P.CANCEL_AGREED, 20), T0 + 20_000)
    assert release(database, T0 + HOLD_MS).outcome is Release.DISCARDED


def test_a_cancel_received_after_the_hold_is_a_refund(database: Database) -> None:
    apply(database, event(P.CREATED, 0), T0, price=PRICE)
    apply(database, event(P.ACCEPTED, 1), T0 + 1000)
    apply(database, event(P.FORCE_INVALIDATED, 70), T0 + 1000 + HOLD_MS + 1)
    assert release(database, T0 + 1000 + HOLD_MS + 5).outcome is Release.STORED
    order, _ = stored(database)
    assert order is not None
    assert order.state == OrderState.REFUNDED
    assert order.refunded_amount_fen == PRICE.user_paid


def test_a_cancelled_order_never_accepted_is_not_held(database: Database) -> None:
    apply(database, event(P.CREATED, 0), T0, price=PRICE)
    result = apply(database, event(P.CANCELLED, 1), T0 + 1000)
    assert result.release_at_ms is None
    assert release(database, T0 + 2 * HOLD_MS).outcome is Release.NOT_HELD
    assert release(database, T0, order="nope").outcome is Release.UNKNOWN


def test_the_hold_is_measured_from_receipt_not_platform_time(database: Database) -> None:
    late = event(P.ACCEPTED, 1)  # platform time T0 + 1 s, received ten minutes later
    assert apply(database, late, T0 + 600_000).release_at_ms == T0 + 600_000 + HOLD_MS


# --------------------------------------------------------------------------- after storage


def test_events_after_storage_update_the_order(database: Database) -> None:
    apply(database, event(P.CREATED, 0), T0, price=PRICE)
    apply(database, event(P.ACCEPTED, 1), T0)
    release(database, T0 + HOLD_MS)
    apply(database, event(P.RIDER_DELIVERING, 100), T0 + HOLD_MS + 1)
    apply(database, event(P.REFUND_REQUESTED, 200), T0 + HOLD_MS + 2)
    apply(database, event(P.COMPLETED, 300), T0 + HOLD_MS + 3)
    order, platform_order = stored(database)
    assert order is not None
    assert (order.state, order.rider_state) == (OrderState.REFUNDING, RiderState.DELIVERING)
    assert platform_order.order_state == OrderState.COMPLETED  # remembered
    assert platform_order.state_code == P.COMPLETED
    assert order.version == 3
    apply(database, event(P.REFUND_AGREED, 400, partial=True, amount=450), T0 + HOLD_MS + 4)
    order, platform_order = stored(database)
    assert order is not None
    assert order.state == OrderState.PARTIALLY_REFUNDED
    assert order.refunded_amount_fen == 450
    assert platform_order.order_state is None
    assert order.version == 4


def test_a_duplicate_changes_nothing(database: Database) -> None:
    apply(database, event(P.ACCEPTED, 1), T0)
    release(database, T0 + HOLD_MS)
    first = apply(database, event(P.RIDER_AT_STORE, 5), T0 + HOLD_MS + 1)
    again = apply(database, event(P.RIDER_AT_STORE, 5), T0 + HOLD_MS + 9)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert count(database, OrderEvent) == 2
    order, _ = stored(database)
    assert order is not None
    assert order.version == 2


def test_items_are_mapped_to_products_and_unmapped_lines_flagged(database: Database) -> None:
    with database.transaction() as session:
        list(import_skus(session, [SkuRow("sample", "SKU-1001", "P-KUNGPAO")], now_ms=T0))
    apply(database, event(P.CREATED, 0), T0, price=PRICE)
    apply(database, event(P.ACCEPTED, 1), T0)
    release(database, T0 + HOLD_MS)
    with database.transaction() as session:
        items = session.execute(select(OrderItem).order_by(OrderItem.line)).scalars().all()
        assert [(item.sku_code, item.product_id, item.unmapped) for item in items] == [
            ("SKU-1001", "P-KUNGPAO", False),
            ("SKU-2002", None, True),
            (None, None, True),
        ]
        assert [(item.quantity, item.unit_original_fen, item.unit_paid_fen) for item in items] == [
            (1, 2800, 2800),
            (2, 500, 400),
            (1, 200, 200),
        ]
        anomalies = session.execute(select(Anomaly.kind, Anomaly.detail, Anomaly.order_id)).all()
        order_id = items[0].order_id
    assert sorted(anomalies) == [
        ("unmapped_sku", "line 2 (可乐): SKU code 'SKU-2002' maps to no product", order_id),
        ("unmapped_sku", "line 3 (餐盒): no SKU code maps to no product", order_id),
    ]


def test_a_price_arriving_after_storage_fills_the_items(database: Database) -> None:
    apply(database, event(P.ACCEPTED, 1), T0)
    release(database, T0 + HOLD_MS)
    apply(database, event(None, 2, key="fetched-order"), T0 + HOLD_MS, price=PRICE)
    assert count(database, OrderItem) == 3


# --------------------------------------------------------------------------- order independence


def _events(lifecycle: list[E]) -> list[Event]:
    return [
        Event(
            platform="sample",
            store_id="S001",
            platform_order_id=ORDER_ID,
            native_code="x",
            idempotency_key=entry.key,
            platform_time_ms=entry.platform_time_ms,
            payload={},
            state=entry.state,
            kitchen_step=entry.kitchen_step,
            partial=entry.partial,
            refund_amount_fen=entry.refund_amount_fen,
        )
        for entry in log(*lifecycle)
    ]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lifecycle=lifecycles(), data=st.data())
def test_the_stored_order_is_the_fold_of_the_set_of_events(
    database: Database, lifecycle: list[E], data: st.DataObject
) -> None:
    clear(database)
    events = _events(lifecycle)
    arrivals = data.draw(
        st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=4)))
    )
    # workers apply what has arrived in batches of any size (one event is a batch of one)
    sizes = data.draw(st.lists(st.integers(1, 6), min_size=len(arrivals), max_size=len(arrivals)))
    release_at = T0
    position = 0
    for size in sizes:
        batch = arrivals[position : position + size]
        position += size
        with database.transaction(durable=False) as session:
            results = apply_events(
                session, [Incoming(item, T0) for item in batch], accept_hold_ms=HOLD_MS
            )
        release_at = max([result.release_at_ms or release_at for result in results] + [release_at])
    outcome = release(database, release_at).outcome
    expected = fold(log(*lifecycle), user_paid_fen=None)
    order, platform_order = stored(database)
    assert platform_order.state_code == (
        None if expected.platform_state is None else int(expected.platform_state)
    )
    assert platform_order.order_state == expected.saved_state
    # all events arrive within the hold: only a cancellation before completion keeps the
    # order out of the table (SPEC §5); one completed and then refunded is a real sale
    if expected.fulfilment is None or cancelled_before_completion(log(*lifecycle)):
        assert order is None
        assert outcome in (Release.DISCARDED, Release.NOT_HELD)
        return
    assert outcome is Release.STORED
    assert order is not None
    assert (order.state, order.rider_state, order.refunded_amount_fen) == (
        expected.order_state,
        expected.rider_state,
        expected.refunded_amount_fen,
    )


# --------------------------------------------------------------------------- serialisation


@contextmanager
def lock_waits(database: Database) -> Iterator[Callable[[], bool]]:
    """A check of whether another thread's transaction now waits for a lock held here.

    PostgreSQL shows it: a backend of the database waits for a lock. On SQLite the lock is
    the writer lock every transaction takes with ``BEGIN IMMEDIATE``: another thread that
    started one waits until the transaction holding it ends.
    """
    if database.dialect == "postgresql":
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )

        def waits() -> bool:
            with database.engine.connect() as connection:
                return bool(connection.scalar(waiting))

        yield waits
        return
    here = threading.current_thread()
    begun: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN IMMEDIATE") and threading.current_thread() is not here:
            begun.append(statement)

    sqlalchemy_event.listen(database.engine, "before_cursor_execute", seen)
    try:
        yield lambda: bool(begun)
    finally:
        sqlalchemy_event.remove(database.engine, "before_cursor_execute", seen)


def test_one_order_is_applied_by_one_worker_at_a_time(database: Database) -> None:
    apply(database, event(P.ACCEPTED, 1), T0)
    release(database, T0 + HOLD_MS)
    applied: list[Any] = []
    worker = threading.Thread(
        target=lambda: applied.append(
            apply(database, event(P.RIDER_DELIVERING, 50), T0 + HOLD_MS + 1)
        )
    )

    with lock_waits(database) as waits, database.transaction() as session:
        assert lock_orders(session, [("sample", ORDER_ID)])
        worker.start()
        wait_until(waits, 30, "the other worker waiting for the order's lock")
        assert applied == []
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(applied) == 1  # once the lock was released
    order, _ = stored(database)
    assert order is not None
    assert (order.rider_state, order.version) == (RiderState.DELIVERING, 2)


def test_an_event_that_waited_for_a_release_updates_the_stored_order(
    database: Database,
) -> None:
    apply(database, event(P.ACCEPTED, 1), T0)
    worker = threading.Thread(
        target=apply, args=(database, event(P.RIDER_DELIVERING, 50), T0 + HOLD_MS + 1)
    )

    with lock_waits(database) as waits, database.transaction() as session:
        assert lock_orders(session, [("sample", ORDER_ID)])
        worker.start()
        wait_until(waits, 30, "the event waiting for the order's lock")
        [released] = release_holds(
            session, [("sample", ORDER_ID)], accept_hold_ms=HOLD_MS, now_ms=T0 + HOLD_MS
        )
        assert released.outcome is Release.STORED
    worker.join(timeout=30)
    assert not worker.is_alive()
    order, _ = stored(database)
    assert order is not None  # stored while the event waited, and the event reached it
    assert (order.rider_state, order.version) == (RiderState.DELIVERING, 2)


def test_concurrent_workers_lose_no_event(database: Database) -> None:
    lifecycle = [
        P.CREATED,
        P.ACCEPTED,
        P.RIDER_AWAITING_PICKUP,
        P.RIDER_AT_STORE,
        P.RIDER_DELIVERING,
    ]
    lifecycle += [P.RIDER_DELIVERED, P.COMPLETED, P.REFUND_REQUESTED]
    events = [event(state, position) for position, state in enumerate(lifecycle)]
    apply(database, events[1], T0)
    release(database, T0 + HOLD_MS)
    errors: list[BaseException] = []

    def worker(share: list[Event]) -> None:
        try:
            for item in share:
                apply(database, item, T0 + HOLD_MS)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(events[index::3] * 2,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    order, platform_order = stored(database)
    assert order is not None
    assert order.state == OrderState.REFUNDING
    assert platform_order.order_state == OrderState.COMPLETED
    assert count(database, OrderEvent) == len(events)


def test_due_holds_of_some_stores_are_released_together(database: Database) -> None:
    def accepted(order: str, store: str, received: int, *, cancel: bool = False) -> None:
        item = event(P.ACCEPTED, 1, order=order).model_copy(update={"store_id": store})
        apply(database, Event.model_validate(item.model_dump()), received, price=PRICE)
        if cancel:
            cancelled = event(P.CANCELLED, 2, order=order).model_copy(update={"store_id": store})
            apply(database, Event.model_validate(cancelled.model_dump()), received + 10)

    accepted("DUE-1", "S001", T0)
    accepted("DUE-2", "S002", T0 + 5)
    accepted("CANCELLED", "S001", T0, cancel=True)
    accepted("LATER", "S001", T0 + HOLD_MS)
    accepted("OTHER-STORE", "S009", T0)
    with database.transaction() as session:
        released = release_due(
            session, ["S001", "S002"], accept_hold_ms=HOLD_MS, now_ms=T0 + HOLD_MS + 5, limit=10
        )
    assert sorted(outcome.outcome for outcome in released) == [
        Release.DISCARDED, Release.STORED, Release.STORED,
    ]  # fmt: skip
    stored_ids = {
        order: stored(database, order)[0] is not None
        for order in ("DUE-1", "DUE-2", "CANCELLED", "LATER", "OTHER-STORE")
    }
    assert stored_ids == {
        "DUE-1": True, "DUE-2": True, "CANCELLED": False, "LATER": False, "OTHER-STORE": False,
    }  # fmt: skip
    assert count(database, OrderItem) == 2 * len(PRICE.items)
    with database.transaction() as session:
        again = release_due(
            session, ["S001", "S002"], accept_hold_ms=HOLD_MS, now_ms=T0 + HOLD_MS + 5, limit=10
        )
    assert again == []


def test_holds_released_together_each_get_their_own_outcome(database: Database) -> None:
    for order, received in (("DUE", T0), ("STORED", T0), ("LATER", T0 + 500)):
        apply(database, event(P.CREATED, 0, order=order), received, price=PRICE)
        apply(database, event(P.ACCEPTED, 1, order=order), received)
    apply(database, event(P.ACCEPTED, 1, order="NOT-HELD").model_copy(update={"state": None}), T0)
    release(database, T0 + HOLD_MS, order="STORED")
    keys = [("sample", name) for name in ("LATER", "NOPE", "DUE", "STORED", "NOT-HELD", "DUE")]

    with database.transaction() as session:
        released = release_holds(session, keys, accept_hold_ms=HOLD_MS, now_ms=T0 + HOLD_MS + 1)

    stored_order, _ = stored(database, "STORED")
    assert stored_order is not None
    assert [outcome.outcome for outcome in released] == [
        Release.NOT_YET, Release.UNKNOWN, Release.STORED, Release.ALREADY_STORED,
        Release.NOT_HELD, Release.STORED,
    ]  # fmt: skip
    assert released[0].release_at_ms == T0 + 500 + HOLD_MS
    assert released[3].order_id == stored_order.id
    assert released[2] == released[5]  # one key asked twice: released once
    assert count(database, Order) == 2
    assert count(database, OrderItem) == 2 * len(PRICE.items)


def test_relaxed_transactions_keep_the_urls_own_connection_options(postgres_url: str) -> None:
    database = Database(f"{postgres_url}?options=-c%20statement_timeout%3D12345")
    try:
        for durable, commit in ((True, "on"), (False, "off")):
            with database.transaction(durable=durable) as session:
                shown = session.execute(text("SHOW synchronous_commit")).scalar_one()
                timeout = session.execute(text("SHOW statement_timeout")).scalar_one()
            assert (shown, timeout) == (commit, "12345ms")
    finally:
        database.dispose()


def test_rows_updated_together_get_their_own_values_and_keep_the_rest(database: Database) -> None:
    for name in ("A", "B", "C"):
        apply(database, event(P.CREATED, 0, order=name), T0, price=PRICE)
    ids = {name: stored(database, name)[1].id for name in ("A", "B", "C")}

    with database.transaction() as session:
        update_rows(
            session,
            PlatformOrder,
            [
                {"id": ids["A"], "order_state": "cooking", "price": None, "discarded": True},
                {
                    "id": ids["B"],
                    "order_state": None,
                    "price": {"k": [1, "二"]},
                    "discarded": False,
                },
            ],
        )

    found = {}
    for name in ("A", "B", "C"):
        platform_order = stored(database, name)[1]
        found[name] = (
            platform_order.order_state, platform_order.price, platform_order.discarded,
            platform_order.store_id,
        )  # fmt: skip
    untouched = stored(database, "C")[1].order_state
    assert found == {
        "A": ("cooking", None, True, "S001"),
        "B": (None, {"k": [1, "二"]}, False, "S001"),
        "C": (untouched, PRICE.model_dump(mode="json"), False, "S001"),
    }


def _platform_order_row(number: int) -> dict[str, Any]:
    return {
        "platform": "testpay", "platform_order_id": f"O{number}", "store_id": "S001",
        "store_inferred": False, "discarded": False,
        "created_at_ms": T0, "updated_at_ms": T0,
    }  # fmt: skip


def test_rows_are_updated_through_the_primary_key_not_a_scan_of_the_table(
    postgres_database: Database,
) -> None:
    database = postgres_database
    with database.transaction() as session:
        rows = [_platform_order_row(number) for number in range(3000)]
        ids = [row_id for (row_id,) in insert_ignoring_conflict(session, PlatformOrder, rows)]
        session.execute(text("ANALYZE platform_orders"))
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sqlalchemy_event.listen(database.engine, "before_cursor_execute", capture)
    try:
        with database.transaction() as session:
            update_rows(session, PlatformOrder, [{"id": ids[7], "order_state": "cooking"}])
    finally:
        sqlalchemy_event.remove(database.engine, "before_cursor_execute", capture)
    [(statement, parameters)] = [(s, p) for s, p in sent if s.startswith("UPDATE")]
    with database.transaction() as session:
        plan = session.connection().exec_driver_sql(f"EXPLAIN {statement}", parameters)
        lines = [line for (line,) in plan]
        updated = session.get(PlatformOrder, ids[7])
    assert updated is not None
    assert updated.order_state == "cooking"
    assert not [line for line in lines if "Seq Scan on platform_orders" in line], lines

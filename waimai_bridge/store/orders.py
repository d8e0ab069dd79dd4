"""The order log: applying an event, and storing an order once its accept hold is over.

Each function runs inside the caller's transaction (see
:meth:`~waimai_bridge.store.database.Database.transaction`) and starts by locking the
platform order, so two workers never interleave on one order. The state is always the fold
of the whole log (:mod:`waimai_bridge.statemachine`), never an update of the last state, so
the order events arrive in cannot matter.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, bindparam, func, literal_column, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause

from waimai_bridge.models import Event, KitchenStep, PlatformState, PriceBreakdown
from waimai_bridge.statemachine import LogEntry, OrderFold, cancelled_before_completion, fold
from waimai_bridge.store import outbox
from waimai_bridge.store.actions import attach_order_ids
from waimai_bridge.store.database import require_durable
from waimai_bridge.store.skus import product_ids
from waimai_bridge.store.tables import (
    Anomaly,
    InboxEvent,
    Order,
    OrderEvent,
    OrderItem,
    PlatformOrder,
)
from waimai_bridge.store.upsert import insert_ignoring_conflict, update_rows


@dataclass(frozen=True)
class Applied:
    """What applying one event did.

    ``release_at_ms``: while the order waits out its accept hold, when to call
    :func:`release_hold`; None when nothing is held. ``starts_hold``: this event started
    the hold (so the caller schedules the release once).
    """

    platform_order_pk: int
    duplicate: bool
    order_id: int | None
    state: OrderFold | None
    release_at_ms: int | None
    starts_hold: bool = False


class Release(StrEnum):
    """What :func:`release_hold` found."""

    STORED = "stored"
    DISCARDED = "discarded"
    NOT_YET = "not_yet"
    UNREAD = "unread"
    FAILED = "failed"
    ALREADY_STORED = "already_stored"
    NOT_HELD = "not_held"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Released:
    """The outcome of a release; ``release_at_ms`` is set when it came too early or an
    event received within the hold is still unread (when to come back), ``overdue_ms``
    (how long after the hold's end it ran) when it stored or discarded."""

    outcome: Release
    order_id: int | None = None
    release_at_ms: int | None = None
    overdue_ms: int | None = None


def lock_platform_order(
    session: Session, platform: str, platform_order_id: str
) -> PlatformOrder | None:
    """The platform order, locked until the transaction ends (FOR UPDATE; SQLite's writer lock)."""
    keys = {"platform": platform, "platform_order_id": platform_order_id}
    return session.execute(_LOCK_ORDER, keys).scalar_one_or_none()


_LOCK_ORDER = (
    select(PlatformOrder)
    .where(
        PlatformOrder.platform == bindparam("platform"),
        PlatformOrder.platform_order_id == bindparam("platform_order_id"),
    )
    .with_for_update()
)


@dataclass(frozen=True)
class Incoming:
    """An event to apply: ``received_at_ms`` is when the bridge received its push, ``price``
    the order's price breakdown when the event carries the order."""

    event: Event
    received_at_ms: int
    price: PriceBreakdown | None = None


def apply_event(
    session: Session,
    event: Event,
    *,
    received_at_ms: int,
    accept_hold_ms: int,
    price: PriceBreakdown | None = None,
) -> Applied:
    """Add ``event`` to its order's log (once per idempotency key) and refold the order.

    The accept hold of an order starts when its first fulfilment event (acceptance, a
    kitchen step, a rider event or completion) is received.
    """
    [applied] = apply_events(
        session, [Incoming(event, received_at_ms, price)], accept_hold_ms=accept_hold_ms
    )
    return applied


@dataclass
class _Stored:
    """A stored order's row as this transaction reads and changes it."""

    id: int
    platform: str
    store_id: str
    state: str
    rider_state: str | None
    refunded_amount_fen: int
    price: dict[str, Any] | None
    version: int
    updated_at_ms: int
    changed: bool = False

    def row(self) -> dict[str, Any]:
        """The values to write back."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "changed"}


@dataclass
class _Locked:
    """A locked platform order's row as this transaction reads and changes it (without its
    latest payload, which is only ever replaced), with its stored order if any."""

    id: int
    platform: str
    platform_order_id: str
    store_id: str
    store_inferred: bool
    state_code: int | None
    order_state: str | None
    price: dict[str, Any] | None
    order_id: int | None
    hold_started_at_ms: int | None
    discarded: bool
    updated_at_ms: int
    order: _Stored | None = None


def _columns(table: type[Any], record: type[Any]) -> list[Any]:
    """The columns of ``table`` that fill the dataclass ``record``."""
    names = {field.name for field in fields(record)}
    return [column for column in table.__table__.columns if column.name in names]


_LOCK_ORDERS = (
    select(*_columns(PlatformOrder, _Locked))
    .where(
        tuple_(PlatformOrder.platform, PlatformOrder.platform_order_id).in_(
            bindparam("keys", expanding=True)
        )
    )
    .order_by(PlatformOrder.platform, PlatformOrder.platform_order_id)
    .with_for_update()
)
"""Platform orders by (platform, order id), locked in that order."""
_STORED = select(*_columns(Order, _Stored)).where(Order.id.in_(bindparam("ids", expanding=True)))


def _lock(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], _Locked]:
    """The platform orders of ``keys`` that exist, locked, by key."""
    rows = session.connection().execute(_LOCK_ORDERS, {"keys": list(keys)})
    return {(row.platform, row.platform_order_id): _Locked(**row._mapping) for row in rows}


def _with_stored_orders(session: Session, locked: Collection[_Locked]) -> None:
    """Read the stored orders of locked platform orders. Only once the locks are held: read
    with them, an order another transaction stored while this one waited would be missed
    (PostgreSQL rechecks only the locked rows)."""
    ids = [platform_order.order_id for platform_order in locked if platform_order.order_id]
    if not ids:
        return
    stored = {
        row.id: _Stored(**row._mapping)
        for row in session.connection().execute(_STORED, {"ids": ids})
    }
    for platform_order in locked:
        if platform_order.order_id is not None:
            platform_order.order = stored[platform_order.order_id]


def apply_events(
    session: Session, incoming: Sequence[Incoming], *, accept_hold_ms: int
) -> list[Applied]:
    """:func:`apply_event` for a batch of events of any orders, in a few statements.

    The platform orders are locked in (platform, order id) order, so two batches that share
    orders cannot deadlock; each touched order is folded once.
    """
    if not incoming:
        return []
    first: dict[tuple[str, str], Incoming] = {}
    for item in incoming:  # the first event of each order, one naming its store if any does
        key = (item.event.platform, item.event.platform_order_id)
        if key not in first or (first[key].event.store_inferred and not item.event.store_inferred):
            first[key] = item
    keys = sorted(first)
    insert_ignoring_conflict(
        session,
        PlatformOrder,
        [
            {
                "platform": platform,
                "platform_order_id": order_id,
                "store_id": first[platform, order_id].event.store_id,
                "store_inferred": first[platform, order_id].event.store_inferred,
                "latest_payload": first[platform, order_id].event.payload,
                "discarded": False,
                "created_at_ms": first[platform, order_id].received_at_ms,
                "updated_at_ms": first[platform, order_id].received_at_ms,
            }
            for platform, order_id in keys
        ],
    )
    orders = _lock(session, keys)
    _with_stored_orders(session, orders.values())
    unique: dict[tuple[str, str], Incoming] = {}
    for item in incoming:
        unique.setdefault((item.event.platform, item.event.idempotency_key), item)
    inserted = {
        (platform, key)
        for platform, key in insert_ignoring_conflict(
            session,
            OrderEvent,
            [
                _event_row(orders[item.event.platform, item.event.platform_order_id], item)
                for item in unique.values()
            ],
            returning=(OrderEvent.platform, OrderEvent.idempotency_key),
        )
    }
    fresh: dict[tuple[str, str], list[Incoming]] = {}
    for event_key, item in unique.items():
        if event_key in inserted:
            fresh.setdefault((item.event.platform, item.event.platform_order_id), []).append(item)
    logs = _logs(session, [orders[key].id for key in fresh])
    outcomes: dict[tuple[str, str], Applied] = {}
    refolded: list[dict[str, Any]] = []
    for key, items in fresh.items():
        platform_order = orders[key]
        outcomes[key], row = _refold(
            session, platform_order, items, logs[platform_order.id], accept_hold_ms
        )
        refolded.append(row)
    update_rows(session, PlatformOrder, refolded)
    update_rows(
        session, Order, [po.order.row() for po in orders.values() if po.order and po.order.changed]
    )
    results = []
    for item in incoming:
        event_key = (item.event.platform, item.event.idempotency_key)
        order_key = (item.event.platform, item.event.platform_order_id)
        if event_key in inserted and unique[event_key] is item:
            results.append(outcomes[order_key])
        else:
            platform_order = orders[order_key]
            results.append(Applied(platform_order.id, True, platform_order.order_id, None, None))
    return results


def _refold(
    session: Session,
    platform_order: _Locked,
    items: list[Incoming],
    log: Sequence[LogRow],
    accept_hold_ms: int,
) -> tuple[Applied, dict[str, Any]]:
    """Fold a platform order after new events of it were added to its log; what it did,
    and the platform order's row to write."""
    _settle_store(platform_order, items)
    latest = max(items, key=lambda item: item.received_at_ms)
    prices = [item.price for item in items if item.price is not None]
    if prices:
        platform_order.price = prices[-1].model_dump(mode="json")
    state = fold([_entry(row) for row in log], user_paid_fen=_user_paid(platform_order.price))
    platform_order.state_code = None if state.platform_state is None else int(state.platform_state)
    platform_order.order_state = state.saved_state
    platform_order.updated_at_ms = latest.received_at_ms
    held = platform_order.order_id is None and not platform_order.discarded
    starters = [item.received_at_ms for item in items if starts_fulfilment(item.event)]
    starts_hold = held and platform_order.hold_started_at_ms is None and bool(starters)
    if starts_hold:
        platform_order.hold_started_at_ms = min(starters)
    if platform_order.order is not None:
        _update_order(session, platform_order, platform_order.order, state, latest.received_at_ms)
    release_at = None
    if held and platform_order.hold_started_at_ms is not None:
        release_at = platform_order.hold_started_at_ms + accept_hold_ms
    row = {
        "id": platform_order.id,
        "store_id": platform_order.store_id,
        "store_inferred": platform_order.store_inferred,
        "state_code": platform_order.state_code,
        "order_state": platform_order.order_state,
        "price": platform_order.price,
        "hold_started_at_ms": platform_order.hold_started_at_ms,
        "updated_at_ms": platform_order.updated_at_ms,
        "latest_payload": latest.event.payload,
    }
    applied = Applied(
        platform_order.id, False, platform_order.order_id, state, release_at, starts_hold
    )
    return applied, row


def _settle_store(platform_order: _Locked, items: list[Incoming]) -> None:
    """Take the store an event names over one a plugin could only guess."""
    if not platform_order.store_inferred:
        return
    named = [item.event.store_id for item in items if not item.event.store_inferred]
    if named:
        platform_order.store_id, platform_order.store_inferred = named[0], False
        if platform_order.order is not None:
            platform_order.order.store_id, platform_order.order.changed = named[0], True


def starts_fulfilment(event: Event) -> bool:
    """Whether the event shows the order accepted (and so starts the accept hold)."""
    return LogEntry.of(event, arrival=0).transition.fulfilment is not None


UNREAD_WAIT_MS = 500
"""How long a release waits for the inbox to hand over the events received within the
hold that are still unread, before it looks again."""


def release_hold(
    session: Session,
    platform: str,
    platform_order_id: str,
    *,
    accept_hold_ms: int,
    now_ms: int,
) -> Released:
    """Store the order if its accept hold is over and it was not cancelled within it.

    Called from a delayed message at the time :func:`apply_event` gave; calling it again,
    too early or for an order already stored is harmless. An order whose events received
    within the hold cancel it before completion is discarded: it never enters ``orders``
    (SPEC §5). While the inbox still holds an unread event of the order received within
    the hold, nothing is decided: the outcome is :attr:`Release.UNREAD`, to come back at
    its ``release_at_ms``.
    """
    [released] = release_holds(
        session, [(platform, platform_order_id)], accept_hold_ms=accept_hold_ms, now_ms=now_ms
    )
    return released


def release_holds(
    session: Session,
    keys: Sequence[tuple[str, str]],
    *,
    accept_hold_ms: int,
    now_ms: int,
    lines: bool = True,
) -> list[Released]:
    """:func:`release_hold` for several platform orders ``(platform, platform_order_id)``
    in a few statements; the outcome of each key, in order. Without ``lines``, an order
    is stored without its lines, and a ``lines_not_stored`` anomaly says so: for an order
    whose lines the database refused."""
    wanted = sorted(set(keys))
    found = _lock(session, wanted)
    outcomes: dict[tuple[str, str], Released] = {}
    due: list[_Locked] = []
    for key in wanted:
        platform_order = found.get(key)
        if platform_order is None:
            outcomes[key] = Released(Release.UNKNOWN)
        elif platform_order.order_id is not None:
            outcomes[key] = Released(Release.ALREADY_STORED, platform_order.order_id)
        elif platform_order.discarded:
            outcomes[key] = Released(Release.DISCARDED)
        elif platform_order.hold_started_at_ms is None:
            outcomes[key] = Released(Release.NOT_HELD)
        elif now_ms < (deadline := platform_order.hold_started_at_ms + accept_hold_ms):
            outcomes[key] = Released(Release.NOT_YET, release_at_ms=deadline)
        else:
            due.append(platform_order)
    for platform_order, released in zip(
        due, _release(session, due, accept_hold_ms, now_ms, lines=lines), strict=True
    ):
        outcomes[platform_order.platform, platform_order.platform_order_id] = released
    return [outcomes[key] for key in keys]


def release_due(
    session: Session,
    store_ids: Collection[str],
    *,
    accept_hold_ms: int,
    now_ms: int,
    limit: int,
) -> list[Released]:
    """:func:`release_hold` for every order of these stores whose hold is over (at most
    ``limit``), in a few statements; orders another worker holds are skipped."""
    if not store_ids:
        return []
    statement = (
        select(*_columns(PlatformOrder, _Locked))
        .where(
            PlatformOrder.order_id.is_(None),
            PlatformOrder.discarded.is_(False),
            PlatformOrder.hold_started_at_ms <= now_ms - accept_hold_ms,
            PlatformOrder.store_id.in_(store_ids),
        )
        .order_by(PlatformOrder.platform, PlatformOrder.platform_order_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    due = [_Locked(**row._mapping) for row in session.connection().execute(statement)]
    return _release(session, due, accept_hold_ms, now_ms)


def order_fold(
    session: Session, platform_order: PlatformOrder, unread: Sequence[LogEntry] = ()
) -> OrderFold:
    """The fold of a platform order's whole log, with the ``unread`` events (received,
    not yet applied) after it: where it stands now."""
    log = _logs(session, [platform_order.id])[platform_order.id]
    entries = [*(_entry(row) for row in log), *unread]
    return fold(entries, user_paid_fen=_user_paid(platform_order.price))


def _release(
    session: Session, held: Sequence[_Locked], accept_hold_ms: int, now_ms: int,
    *, lines: bool = True,
) -> list[Released]:  # fmt: skip
    """Store or discard locked platform orders whose hold is over, once every event
    received within their holds is read."""
    logs = _logs(session, [platform_order.id for platform_order in held])
    unread = _first_unread(session, held)
    outcomes: dict[int, Released] = {}
    stored: list[tuple[_Locked, OrderFold]] = []
    overdue: dict[int, int] = {}
    for platform_order in held:
        assert platform_order.hold_started_at_ms is not None  # held orders started a hold
        deadline = platform_order.hold_started_at_ms + accept_hold_ms
        key = (platform_order.platform, platform_order.platform_order_id)
        if key in unread and unread[key] <= deadline:
            outcomes[platform_order.id] = Released(
                Release.UNREAD, release_at_ms=now_ms + UNREAD_WAIT_MS
            )
            continue
        overdue[platform_order.id] = now_ms - deadline
        rows = logs[platform_order.id]
        within_hold = [_entry(row) for row in rows if row.received_at_ms <= deadline]
        if cancelled_before_completion(within_hold):
            platform_order.discarded = True
            outcomes[platform_order.id] = Released(
                Release.DISCARDED, overdue_ms=overdue[platform_order.id]
            )
            continue
        state = fold([_entry(row) for row in rows], user_paid_fen=_user_paid(platform_order.price))
        if state.order_state is None:  # unreachable: the hold starts with fulfilment
            raise AssertionError(f"held order {platform_order.id} has no order state")
        stored.append((platform_order, state))
    if stored:
        _store(session, stored, outcomes, overdue, now_ms, lines=lines)
    update_rows(
        session,
        PlatformOrder,
        [
            {"id": po.id, "discarded": po.discarded, "order_id": po.order_id}
            for po in held
            if po.discarded or po.order_id is not None
        ],
    )
    return [outcomes[platform_order.id] for platform_order in held]


_PENDING: ColumnClause[str] = literal_column("'pending'")
"""The inbox status of an unread event, as a literal so that PostgreSQL matches the
partial index of pending events whatever plan it caches."""


def _first_unread(session: Session, held: Sequence[_Locked]) -> dict[tuple[str, str], int]:
    """When the earliest unread (pending) inbox event of each of these platform orders that
    has one was received, by ``(platform, platform_order_id)``."""
    if not held:
        return {}
    keys = [(platform_order.platform, platform_order.platform_order_id) for platform_order in held]
    statement = (
        select(
            InboxEvent.platform, InboxEvent.platform_order_id, func.min(InboxEvent.received_at_ms)
        )
        .where(
            InboxEvent.status == _PENDING,
            tuple_(InboxEvent.platform, InboxEvent.platform_order_id).in_(keys),
        )
        .group_by(InboxEvent.platform, InboxEvent.platform_order_id)
    )
    return {
        (platform, order_id): received
        for platform, order_id, received in session.connection().execute(statement)
    }


def _store(
    session: Session,
    stored: Sequence[tuple[_Locked, OrderFold]],
    outcomes: dict[int, Released],
    overdue: dict[int, int],
    now_ms: int,
    *,
    lines: bool,
) -> None:
    """Insert the orders of platform orders whose hold ended, with their lines (or, without
    ``lines``, an anomaly saying they could not be stored).

    The commit is durable: an order's id is shown to the chain's systems at once, and a
    database crash must not let it be taken back and given to another order."""
    require_durable(session)
    orders = [
        {
            "platform": platform_order.platform,
            "platform_order_id": platform_order.platform_order_id,
            "store_id": platform_order.store_id,
            "state": state.order_state,
            "rider_state": state.rider_state,
            "refunded_amount_fen": state.refunded_amount_fen,
            "price": platform_order.price,
            "version": 1,
            "created_at_ms": now_ms,
            "updated_at_ms": now_ms,
        }
        for platform_order, state in stored
    ]
    returning = (Order.id, Order.platform, Order.platform_order_id)
    ids = {
        (platform, platform_order_id): order_id
        for order_id, platform, platform_order_id in insert_ignoring_conflict(
            session, Order, orders, returning=returning
        )
    }
    for platform_order, state in stored:
        assert state.order_state is not None  # checked above
        order_id = ids[platform_order.platform, platform_order.platform_order_id]
        platform_order.order_id = order_id
        outcomes[platform_order.id] = Released(
            Release.STORED, order_id, overdue_ms=overdue[platform_order.id]
        )
        outbox.order_update(
            session, order_id=order_id, platform=platform_order.platform,
            store_id=platform_order.store_id, status=state.order_state, previous_status=None,
            rider_state=state.rider_state, version=1, now_ms=now_ms,
        )  # fmt: skip
    if lines:
        _store_items(session, [(po, po.order_id) for po, _ in stored], now_ms)
    else:
        insert_ignoring_conflict(session, Anomaly, [
            {"platform_order_pk": po.id, "order_id": po.order_id, "kind": "lines_not_stored",
             "detail": "the database refused its lines: see the price", "created_at_ms": now_ms}
            for po, _ in stored
        ])  # fmt: skip
    attach_order_ids(
        session,
        [(po.platform, po.platform_order_id, po.order_id) for po, _ in stored if po.order_id],
    )


def _tell_subscribers(session: Session, order: _Stored, previous: str | None, now_ms: int) -> None:
    outbox.order_update(
        session, order_id=order.id, platform=order.platform, store_id=order.store_id,
        status=order.state, previous_status=previous, rider_state=order.rider_state,
        version=order.version, now_ms=now_ms,
    )  # fmt: skip


def overdue_holds(
    session: Session, *, accept_hold_ms: int, before_ms: int, limit: int
) -> list[tuple[str, str, str]]:
    """Held orders whose hold ended before ``before_ms`` and are still not released:
    ``(platform, platform_order_id, store_id)`` of each (a lost delayed message)."""
    statement = (
        select(PlatformOrder.platform, PlatformOrder.platform_order_id, PlatformOrder.store_id)
        .where(
            PlatformOrder.order_id.is_(None),
            PlatformOrder.discarded.is_(False),
            PlatformOrder.hold_started_at_ms < before_ms - accept_hold_ms,
        )
        .order_by(PlatformOrder.hold_started_at_ms)
        .limit(limit)
    )
    return [(platform, order, store) for platform, order, store in session.execute(statement)]


def _event_row(platform_order: _Locked, item: Incoming) -> dict[str, Any]:
    event = item.event
    return {
        "platform_order_pk": platform_order.id,
        "platform": event.platform,
        "idempotency_key": event.idempotency_key,
        "native_code": event.native_code,
        "state_code": None if event.state is None else int(event.state),
        "kitchen_step": event.kitchen_step,
        "partial": event.partial,
        "refund_amount_fen": event.refund_amount_fen,
        "refunded_items": [item.model_dump(mode="json") for item in event.refunded_items],
        "reason": event.reason,
        "platform_time_ms": event.platform_time_ms,
        "received_at_ms": item.received_at_ms,
        "payload": event.payload,
    }


LogRow = Row[*tuple[Any, ...]]
"""A logged event as :func:`_logs` reads it."""


def _entry(row: LogRow) -> LogEntry:
    return LogEntry(
        key=row.idempotency_key,
        platform_time_ms=row.platform_time_ms,
        arrival=row.id,
        state=None if row.state_code is None else PlatformState(row.state_code),
        kitchen_step=None if row.kitchen_step is None else KitchenStep(row.kitchen_step),
        partial=row.partial,
        refund_amount_fen=row.refund_amount_fen,
    )


_LOG_COLUMNS = (
    OrderEvent.id, OrderEvent.platform_order_pk, OrderEvent.idempotency_key,
    OrderEvent.platform_time_ms, OrderEvent.state_code, OrderEvent.kitchen_step,
    OrderEvent.partial, OrderEvent.refund_amount_fen, OrderEvent.received_at_ms,
)  # fmt: skip
"""What folding needs of a logged event (not its payload)."""
_LOGS = (
    select(*_LOG_COLUMNS)
    .where(OrderEvent.platform_order_pk.in_(bindparam("pks", expanding=True)))
    .order_by(OrderEvent.id)
)


def _logs(session: Session, platform_order_pks: Sequence[int]) -> dict[int, list[LogRow]]:
    """The event logs of several platform orders, each in arrival order."""
    logs: dict[int, list[LogRow]] = {pk: [] for pk in platform_order_pks}
    if platform_order_pks:
        rows = session.connection().execute(_LOGS, {"pks": list(platform_order_pks)})
        for row in rows:
            logs[row.platform_order_pk].append(row)
    return logs


def _user_paid(price: dict[str, Any] | None) -> int | None:
    return None if price is None else int(price["user_paid"])


def _update_order(
    session: Session, platform_order: _Locked, order: _Stored, state: OrderFold, now_ms: int
) -> None:
    assert state.order_state is not None  # a stored order was accepted
    observed = (state.order_state, state.rider_state, state.refunded_amount_fen)
    if observed != (order.state, order.rider_state, order.refunded_amount_fen):
        previous = order.state
        order.state, order.rider_state, order.refunded_amount_fen = observed
        order.version += 1
        order.updated_at_ms = now_ms
        order.changed = True
        _tell_subscribers(session, order, previous, now_ms)
    if order.price is None and platform_order.price is not None:
        order.price, order.changed = platform_order.price, True
        _store_items(session, [(platform_order, order.id)], now_ms)


def _store_items(
    session: Session, stored: Sequence[tuple[_Locked, int | None]], now_ms: int
) -> None:
    """The lines of the orders (platform order, stored order id) from their price
    breakdowns, each mapped to the chain's product; an unmapped line is flagged and noted as
    an anomaly of its order."""
    priced: list[tuple[_Locked, int | None, PriceBreakdown]] = []
    anomalies = []
    for platform_order, order_id in stored:
        if platform_order.price is None:
            continue
        try:
            priced.append(
                (platform_order, order_id, PriceBreakdown.model_validate(platform_order.price))
            )
        except ValidationError as exc:  # kept before the contract bounded it: no lines
            anomalies.append(
                {
                    "platform_order_pk": platform_order.id,
                    "order_id": order_id,
                    "kind": "price_unreadable",
                    "detail": f"its lines cannot be stored: {exc}"[:500],
                    "created_at_ms": now_ms,
                }
            )
    codes: dict[str, set[str]] = {}
    for platform_order, _, price in priced:
        codes.setdefault(platform_order.platform, set()).update(
            i.sku_code for i in price.items if i.sku_code
        )
    known = {platform: product_ids(session, platform, wanted) for platform, wanted in codes.items()}
    items = []
    for platform_order, order_id, price in priced:
        for line, item in enumerate(price.items, start=1):
            product_id = (
                known[platform_order.platform].get(item.sku_code) if item.sku_code else None
            )
            items.append(
                {
                    "order_id": order_id,
                    "line": line,
                    "sku_code": item.sku_code,
                    "platform_sku_id": item.platform_sku_id,
                    "name": item.name,
                    "quantity": item.quantity,
                    "unit_original_fen": item.unit_original,
                    "unit_paid_fen": item.unit_paid,
                    "product_id": product_id,
                    "unmapped": product_id is None,
                }
            )
            if product_id is None:
                code = f"SKU code {item.sku_code!r}" if item.sku_code else "no SKU code"
                anomalies.append(
                    {
                        "platform_order_pk": platform_order.id,
                        "order_id": order_id,
                        "kind": "unmapped_sku",
                        "detail": f"line {line} ({item.name}): {code} maps to no product"[:500],
                        "created_at_ms": now_ms,
                    }
                )
    insert_ignoring_conflict(session, OrderItem, items)
    insert_ignoring_conflict(session, Anomaly, anomalies)

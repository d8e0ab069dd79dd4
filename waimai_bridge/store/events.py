"""Applying events to their orders: append each to its order's log (once per idempotency
key), then refold the order.

Each function runs inside the caller's transaction (see
:meth:`~waimai_bridge.store.database.Database.transaction`) and starts by locking the
platform orders (:mod:`waimai_bridge.store.order_log`), so two workers never interleave on
one order. The state is always the fold of the whole log (:mod:`waimai_bridge.statemachine`),
never an update of the last state, so the order events arrive in cannot matter. Ending the
accept hold is :mod:`waimai_bridge.store.holds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from waimai_bridge.models import Event, OrderDetails, PriceBreakdown
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.statemachine import LogEntry, OrderFold, fold
from waimai_bridge.store import changes, outbox
from waimai_bridge.store.anomalies import open_anomalies
from waimai_bridge.store.lines import opening, store_lines
from waimai_bridge.store.order_log import (
    Locked,
    LogRow,
    StoredOrder,
    lock_orders,
    log_entry,
    read_logs,
    user_paid_of,
    with_stored_orders,
)
from waimai_bridge.store.tables import Order, OrderEvent, PlatformOrder
from waimai_bridge.store.upsert import insert_ignoring_conflict, update_rows


@dataclass(frozen=True)
class Applied:
    """What applying one event did.

    ``release_at_ms``: while the order waits out its accept hold, when to release it
    (:mod:`waimai_bridge.store.holds`); None when nothing is held. ``starts_hold``: this
    event started the hold (so the caller schedules the release once).
    """

    platform_order_pk: int
    duplicate: bool
    order_id: int | None
    state: OrderFold | None
    release_at_ms: int | None
    starts_hold: bool = False


@dataclass(frozen=True)
class Incoming:
    """An event to apply: ``received_at_ms`` is when the bridge received its push, ``price``
    the order's price breakdown and ``details`` its day sequence number and remark, when the
    event carries the order."""

    event: Event
    received_at_ms: int
    price: PriceBreakdown | None = None
    details: OrderDetails | None = None


def apply_events(
    session: Session, incoming: Sequence[Incoming], *, accept_hold_ms: int
) -> list[Applied]:
    """Add each event to its order's log (once per idempotency key) and refold each touched
    order once; what applying each event did, in the order given.

    The accept hold of an order starts when its first fulfilment event (acceptance, a
    kitchen step, a rider event or completion) is received.

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
                "discarded": False,
                "created_at_ms": first[platform, order_id].received_at_ms,
                "updated_at_ms": first[platform, order_id].received_at_ms,
            }
            for platform, order_id in keys
        ],
    )
    orders = lock_orders(session, keys)
    with_stored_orders(session, orders.values())
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
    logs = read_logs(session, [orders[key].id for key in fresh])
    outcomes: dict[tuple[str, str], Applied] = {}
    refolded: list[dict[str, Any]] = []
    for key, items in fresh.items():
        platform_order = orders[key]
        outcomes[key], row = _refold(
            session, platform_order, items, logs[platform_order.id], accept_hold_ms
        )
        refolded.append(row)
    update_rows(session, PlatformOrder, refolded)
    changes.note(session, [
        changes.Changed(po.platform, po.platform_order_id, po.store_id, po.order_id, changes.ORDER)
        for po in (orders[key] for key in fresh)
    ], max(item.received_at_ms for item in incoming))  # fmt: skip
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
    platform_order: Locked,
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
    details = [item.details for item in items if item.details is not None]
    if details:
        platform_order.details = details[-1].model_dump(mode="json")
    state = fold([log_entry(row) for row in log], user_paid_fen=user_paid_of(platform_order.price))
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
        "details": platform_order.details,
        "hold_started_at_ms": platform_order.hold_started_at_ms,
        "updated_at_ms": platform_order.updated_at_ms,
    }
    applied = Applied(
        platform_order.id, False, platform_order.order_id, state, release_at, starts_hold
    )
    return applied, row


def _settle_store(platform_order: Locked, items: list[Incoming]) -> None:
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


def _update_order(
    session: Session, platform_order: Locked, order: StoredOrder, state: OrderFold, now_ms: int
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
        store_lines(session, [(platform_order, order.id)], now_ms)
    unexplained = order.settle_income(platform_order.price)
    if unexplained is not None:
        detail = (
            f"the platform states {order.net_income_fen} fen after refunds; the rule gives "
            f"{unexplained} fen"
        )
        open_anomalies(
            session, [opening(platform_order, order.id, AnomalyRule.INCOME_MISMATCH, detail)],
            now_ms,
        )  # fmt: skip


def _tell_subscribers(
    session: Session, order: StoredOrder, previous: str | None, now_ms: int
) -> None:
    outbox.order_update(
        session, order_id=order.id, platform=order.platform, store_id=order.store_id,
        status=order.state, previous_status=previous, rider_state=order.rider_state,
        version=order.version, now_ms=now_ms,
    )  # fmt: skip


def _event_row(platform_order: Locked, item: Incoming) -> dict[str, Any]:
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

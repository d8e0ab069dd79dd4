"""The accept hold (SPEC §5): storing an order once its hold is over, or discarding it.

Each function runs inside the caller's transaction and locks the platform orders it
releases. Only a cancellation before completion received within the hold keeps an order
out of the order table, and nothing is decided while an event received within the hold is
still unread in the inbox.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai_bridge.income import net_income
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.statemachine import OrderFold, cancelled_before_completion, fold
from waimai_bridge.store import changes, outbox
from waimai_bridge.store.actions import attach_order_ids
from waimai_bridge.store.anomalies import open_anomalies
from waimai_bridge.store.database import require_durable
from waimai_bridge.store.inbox import first_unread
from waimai_bridge.store.lines import opening, store_lines
from waimai_bridge.store.order_log import (
    Locked,
    lock_orders,
    log_entry,
    read_logs,
    record_columns,
    user_paid_of,
)
from waimai_bridge.store.tables import Order, PlatformOrder
from waimai_bridge.store.upsert import insert_ignoring_conflict, update_rows


class Release(StrEnum):
    """What releasing a hold found."""

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


UNREAD_WAIT_MS = 500
"""How long a release waits for the inbox to hand over the events received within the
hold that are still unread, before it looks again."""


def release_holds(
    session: Session,
    keys: Sequence[tuple[str, str]],
    *,
    accept_hold_ms: int,
    now_ms: int,
    lines: bool = True,
) -> list[Released]:
    """End the accept holds of platform orders ``(platform, platform_order_id)`` that are
    over, in a few statements; the outcome of each key, in order.

    Calling it again, too early or for an order already stored is harmless. An order whose
    events received within the hold cancel it before completion is discarded: it never
    enters ``orders`` (SPEC §5); the others are stored. While the inbox still holds an
    unread event of the order received within the hold, nothing is decided: the outcome is
    :attr:`Release.UNREAD`, to come back at its ``release_at_ms``. Without ``lines``, an
    order is stored without its lines, and a ``lines_not_stored`` anomaly says so: for an
    order whose lines the database refused."""
    wanted = sorted(set(keys))
    found = lock_orders(session, wanted)
    outcomes: dict[tuple[str, str], Released] = {}
    due: list[Locked] = []
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
    """:func:`release_holds` for every order of these stores whose hold is over (at most
    ``limit``), in a few statements; orders another worker holds are skipped."""
    if not store_ids:
        return []
    statement = (
        select(*record_columns(PlatformOrder, Locked))
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
    due = [Locked(**row._mapping) for row in session.connection().execute(statement)]
    return _release(session, due, accept_hold_ms, now_ms)


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


def _release(
    session: Session, held: Sequence[Locked], accept_hold_ms: int, now_ms: int,
    *, lines: bool = True,
) -> list[Released]:  # fmt: skip
    """Store or discard locked platform orders whose hold is over, once every event
    received within their holds is read."""
    logs = read_logs(session, [platform_order.id for platform_order in held])
    unread = first_unread(session, [(po.platform, po.platform_order_id) for po in held])
    outcomes: dict[int, Released] = {}
    stored: list[tuple[Locked, OrderFold]] = []
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
        within_hold = [log_entry(row) for row in rows if row.received_at_ms <= deadline]
        if cancelled_before_completion(within_hold):
            platform_order.discarded = True
            outcomes[platform_order.id] = Released(
                Release.DISCARDED, overdue_ms=overdue[platform_order.id]
            )
            continue
        state = fold(
            [log_entry(row) for row in rows], user_paid_fen=user_paid_of(platform_order.price)
        )
        if state.order_state is None:  # unreachable: the hold starts with fulfilment
            raise AssertionError(f"held order {platform_order.id} has no order state")
        stored.append((platform_order, state))
    if stored:
        _store(session, stored, outcomes, overdue, now_ms, lines=lines)
    ended = [po for po in held if po.discarded or po.order_id is not None]
    update_rows(
        session,
        PlatformOrder,
        [{"id": po.id, "discarded": po.discarded, "order_id": po.order_id} for po in ended],
    )
    changes.note(session, [
        changes.Changed(po.platform, po.platform_order_id, po.store_id, po.order_id, changes.ORDER)
        for po in ended
    ], now_ms)  # fmt: skip
    return [outcomes[platform_order.id] for platform_order in held]


def _store(
    session: Session,
    stored: Sequence[tuple[Locked, OrderFold]],
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
            **_income(platform_order.price, state),
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
        store_lines(session, [(po, po.order_id) for po, _ in stored], now_ms)
    else:
        detail = "the database refused its lines: see the price"
        open_anomalies(session, [
            opening(po, po.order_id, AnomalyRule.LINES_NOT_STORED, detail) for po, _ in stored
        ], now_ms)  # fmt: skip
    attach_order_ids(
        session,
        [(po.platform, po.platform_order_id, po.order_id) for po, _ in stored if po.order_id],
    )


def _income(price: dict[str, Any] | None, state: OrderFold) -> dict[str, Any]:
    """The income after refunds of an order stored now."""
    stated = price or {}
    net, rule = net_income(
        merchant_income=stated.get("merchant_income"), user_paid=stated.get("user_paid"),
        refunded=state.refunded_amount_fen, state=state.order_state or "",
    )  # fmt: skip
    return {"net_income_fen": net, "income_rule": rule.value}

"""What the read API and ``waimai-bridge orders`` show of an order (SPEC §7.3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session, defer, selectinload

from waimai_bridge.bounds import MAX_INT64
from waimai_bridge.models import (
    OrderDetails,
    OrderState,
    PlatformState,
    PriceBreakdown,
    RiderState,
)
from waimai_bridge.store.tables import Anomaly, Order, OrderEvent, PlatformOrder

MAX_PAGE = 500


class StateView(BaseModel):
    """A baseline platform state: its code and name."""

    code: int
    name: str


class ItemView(BaseModel):
    """An order line."""

    line: int
    sku_code: str | None
    platform_sku_id: str | None
    name: str
    quantity: int
    unit_original: int = Field(description="fen")
    unit_paid: int = Field(description="fen")
    product_id: str | None
    unmapped: bool


class AnomalyView(BaseModel):
    """Something a person should look at: ``kind`` is its rule; open until ``resolved_at``."""

    id: int
    kind: str
    detail: str
    created_at: str
    resolved_at: str | None


class EventView(BaseModel):
    """An event of the order's log, in arrival order."""

    id: int
    native_code: str
    state: StateView | None
    kitchen_step: str | None
    partial: bool
    refund_amount: int | None = Field(description="fen")
    reason: str | None
    platform_time: str
    received_at: str


class OrderView(BaseModel):
    """The unified order."""

    id: int
    platform: str
    platform_order_id: str
    store_id: str
    state: OrderState
    rider_state: RiderState | None
    platform_state: StateView | None
    saved_state: OrderState | None
    items: list[ItemView]
    price: PriceBreakdown | None
    details: OrderDetails | None = Field(
        description="The platform's day sequence number and the customer's remark, where "
        "its plugin reads them."
    )
    refunded_amount: int = Field(description="fen")
    net_income: int | None = Field(
        description="What the store earns after refunds, in fen; null when the platform "
        "states no income"
    )
    income_rule: str | None = Field(
        description="How net_income was found: stated, full_refund, refund_share, unstated"
    )
    anomalies: list[AnomalyView]
    events: list[EventView] | None = Field(description="Left out of list answers.")
    created_at: str
    updated_at: str


class OrderPage(BaseModel):
    """A page of orders; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[OrderView]
    next_cursor: str | None


class PlatformOrderView(BaseModel):
    """The ``waimai_order`` view of a platform order."""

    state: StateView | None
    order_state: OrderState | None
    stored: bool
    order_id: int | None


def iso(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC time."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def state_view(code: int | None) -> StateView | None:
    """The code and name of a baseline state."""
    if code is None:
        return None
    return StateView(code=code, name=PlatformState(code).label)


def order_view(
    session: Session, order: Order, platform_order: PlatformOrder, *, with_events: bool = True,
    anomalies: Sequence[Anomaly] | None = None,
) -> OrderView:  # fmt: skip
    """The unified order as the API shows it (``anomalies``: the platform order's, when the
    caller read them already)."""
    if anomalies is None:
        anomalies = anomalies_of(session, [platform_order.id]).get(platform_order.id, [])
    events = None
    if with_events:
        rows = session.execute(
            select(OrderEvent)
            .options(defer(OrderEvent.payload))  # not shown: read only where asked for
            .where(OrderEvent.platform_order_pk == platform_order.id)
            .order_by(OrderEvent.id)
        ).scalars()
        events = [_event_view(row) for row in rows]
    return OrderView(
        id=order.id,
        platform=order.platform,
        platform_order_id=order.platform_order_id,
        store_id=order.store_id,
        state=OrderState(order.state),
        rider_state=None if order.rider_state is None else RiderState(order.rider_state),
        platform_state=state_view(platform_order.state_code),
        saved_state=None
        if platform_order.order_state is None
        else OrderState(platform_order.order_state),
        items=[
            ItemView(
                line=item.line,
                sku_code=item.sku_code,
                platform_sku_id=item.platform_sku_id,
                name=item.name,
                quantity=item.quantity,
                unit_original=item.unit_original_fen,
                unit_paid=item.unit_paid_fen,
                product_id=item.product_id,
                unmapped=item.unmapped,
            )
            for item in order.items
        ],
        price=_price(order),
        details=_details(platform_order),
        refunded_amount=order.refunded_amount_fen,
        net_income=order.net_income_fen,
        income_rule=order.income_rule,
        anomalies=[
            AnomalyView(
                id=row.id,
                kind=row.kind,
                detail=row.detail,
                created_at=iso(row.created_at_ms),
                resolved_at=None if row.resolved_at_ms is None else iso(row.resolved_at_ms),
            )
            for row in anomalies
        ],
        events=events,
        created_at=iso(order.created_at_ms),
        updated_at=iso(order.updated_at_ms),
    )


def _price(order: Order) -> PriceBreakdown | None:
    """The order's price breakdown, each line with the product its ``items`` line was mapped
    to when the order was stored (the mapping is read once, at store time)."""
    if order.price is None:
        return None
    try:
        price = PriceBreakdown.model_validate(order.price)
    except ValidationError:  # kept before the contract bounded it (a price_unreadable anomaly)
        return None
    products = {item.line: item.product_id for item in order.items}
    return price.model_copy(
        update={
            "items": [
                item.model_copy(update={"product_id": products.get(line)})
                for line, item in enumerate(price.items, start=1)
            ]
        }
    )


def _details(platform_order: PlatformOrder) -> OrderDetails | None:
    """The platform order's day sequence number and remark, if its plugin read them."""
    if platform_order.details is None:
        return None
    try:
        return OrderDetails.model_validate(platform_order.details)
    except ValidationError:  # written by a later contract than this process knows
        return None


def _event_view(row: OrderEvent) -> EventView:
    return EventView(
        id=row.id,
        native_code=row.native_code,
        state=state_view(row.state_code),
        kitchen_step=row.kitchen_step,
        partial=row.partial,
        refund_amount=row.refund_amount_fen,
        reason=row.reason,
        platform_time=iso(row.platform_time_ms),
        received_at=iso(row.received_at_ms),
    )


def anomalies_of(session: Session, platform_order_pks: Sequence[int]) -> dict[int, list[Anomaly]]:
    """The anomalies of these platform orders, oldest first, by platform order."""
    found: dict[int, list[Anomaly]] = {}
    if platform_order_pks:
        statement = (
            select(Anomaly)
            .where(Anomaly.platform_order_pk.in_(platform_order_pks))
            .order_by(Anomaly.id)
        )
        for anomaly in session.execute(statement).scalars():
            if anomaly.platform_order_pk is not None:  # a channel's anomaly has none
                found.setdefault(anomaly.platform_order_pk, []).append(anomaly)
    return found


def _orders() -> Select[Order, PlatformOrder]:
    return select(Order, PlatformOrder).join(PlatformOrder, PlatformOrder.order_id == Order.id)


def find_order(session: Session, order_id: int) -> OrderView | None:
    """One order with its events, or None."""
    row = session.execute(_orders().where(Order.id == order_id)).first()
    if row is None:
        return None
    order, platform_order = row
    return order_view(session, order, platform_order)


class BadCursor(ValueError):
    """A cursor that is not the ``next_cursor`` of a page of the same listing."""


def _cursor(cursor: str, *, by_update: bool) -> tuple[int, ...]:
    """A ``next_cursor``: ``ID``, or ``UPDATED_AT_MS.ID`` for a listing ``since`` a time."""
    parts = cursor.split(".")
    if len(parts) != (2 if by_update else 1) or not all(
        part.isascii() and part.isdigit() and int(part) <= MAX_INT64 for part in parts
    ):
        shape = "UPDATED_AT_MS.ID" if by_update else "ID"
        raise BadCursor(f"cursor must be the next_cursor of the page before ({shape})")
    return tuple(int(part) for part in parts)


def list_orders(
    session: Session,
    *,
    store_id: str | None = None,
    platform: str | None = None,
    platform_order_id: str | None = None,
    state: OrderState | None = None,
    since_ms: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OrderPage:
    """A page of orders matching the filters, events left out: by id, or with ``since_ms``
    by when they were last updated (then id). A page takes the same few queries however
    many orders it holds; raises :class:`BadCursor` for a cursor of another listing."""
    statement = _orders()
    filters: Sequence[tuple[Any, Any]] = (
        (Order.store_id, store_id),
        (Order.platform, platform),
        (Order.platform_order_id, platform_order_id),
        (Order.state, state),
    )
    for column, value in filters:
        if value is not None:
            statement = statement.where(column == value)
    by_update = since_ms is not None
    ordering: tuple[Any, ...] = (Order.updated_at_ms, Order.id) if by_update else (Order.id,)
    if since_ms is not None:
        statement = statement.where(Order.updated_at_ms >= since_ms)
    if cursor is not None:
        after = _cursor(cursor, by_update=by_update)
        if by_update:
            statement = statement.where(tuple_(*ordering) > tuple_(*after))
        else:
            statement = statement.where(Order.id > after[0])
    limit = max(1, min(limit, MAX_PAGE))
    statement = statement.options(selectinload(Order.items))
    rows = session.execute(statement.order_by(*ordering).limit(limit + 1)).all()
    anomalies = anomalies_of(session, [po.id for _, po in rows[:limit]])
    items = [
        order_view(session, order, po, with_events=False, anomalies=anomalies.get(po.id, []))
        for order, po in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = f"{last.updated_at_ms}.{last.id}" if by_update else str(last.id)
    return OrderPage(items=items, next_cursor=next_cursor)


def find_platform_order(
    session: Session, platform: str, platform_order_id: str
) -> PlatformOrderView | None:
    """The ``waimai_order`` view, or None for an order the bridge has never seen."""
    row = session.execute(
        select(PlatformOrder).where(
            PlatformOrder.platform == platform, PlatformOrder.platform_order_id == platform_order_id
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return PlatformOrderView(
        state=state_view(row.state_code),
        order_state=None if row.order_state is None else OrderState(row.order_state),
        stored=row.order_id is not None,
        order_id=row.order_id,
    )

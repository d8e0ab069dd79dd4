"""What the read API and ``waimai-bridge orders`` show of an order (SPEC §7.3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, RowMapping, select, tuple_
from sqlalchemy.orm import Session

from waimai_bridge.bounds import MAX_INT64
from waimai_bridge.models import (
    OrderDetails,
    OrderState,
    PlatformState,
    PriceBreakdown,
    RiderState,
)
from waimai_bridge.store.order_reads import (
    ANOMALY_FIELDS,
    EVENT_FIELDS,
    ITEM_FIELDS,
    ORDER_ROWS,
    ORDER_ROWS_WITH_EVENTS,
    records,
)
from waimai_bridge.store.tables import Order, PlatformOrder

MAX_PAGE = 500

Reader = Session | Connection
"""What the reads run on: a session, or a connection of :meth:`Database.read`."""


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


def order_view(row: RowMapping) -> OrderView:
    """The unified order as the API shows it, from a row of
    :data:`~waimai_bridge.store.order_reads.ORDER_ROWS` (``events`` when it has them)."""
    items = records(ITEM_FIELDS, row["items"])
    events = row.get("events")
    return OrderView(
        id=row["id"],
        platform=row["platform"],
        platform_order_id=row["platform_order_id"],
        store_id=row["store_id"],
        state=OrderState(row["state"]),
        rider_state=None if row["rider_state"] is None else RiderState(row["rider_state"]),
        platform_state=state_view(row["state_code"]),
        saved_state=None if row["saved_state"] is None else OrderState(row["saved_state"]),
        items=[ItemView.model_validate(item) for item in items],
        price=_price(row["price"], {item["line"]: item["product_id"] for item in items}),
        details=_details(row["details"]),
        refunded_amount=row["refunded_amount"],
        net_income=row["net_income"],
        income_rule=row["income_rule"],
        anomalies=[_anomaly_view(anomaly) for anomaly in records(ANOMALY_FIELDS, row["anomalies"])],
        events=None if events is None else [_event_view(e) for e in records(EVENT_FIELDS, events)],
        created_at=iso(row["created_at_ms"]),
        updated_at=iso(row["updated_at_ms"]),
    )


def _price(stored: dict[str, Any] | None, products: dict[int, str | None]) -> PriceBreakdown | None:
    """The order's price breakdown, each line with the product its ``items`` line was mapped
    to when the order was stored (the mapping is read once, at store time)."""
    if stored is None:
        return None
    try:
        price = PriceBreakdown.model_validate(stored)
    except ValidationError:  # kept before the contract bounded it (a price_unreadable anomaly)
        return None
    return price.model_copy(
        update={
            "items": [
                item.model_copy(update={"product_id": products.get(line)})
                for line, item in enumerate(price.items, start=1)
            ]
        }
    )


def _details(stored: dict[str, Any] | None) -> OrderDetails | None:
    """The platform order's day sequence number and remark, if its plugin read them."""
    if stored is None:
        return None
    try:
        return OrderDetails.model_validate(stored)
    except ValidationError:  # written by a later contract than this process knows
        return None


def _anomaly_view(anomaly: dict[str, Any]) -> AnomalyView:
    resolved = anomaly["resolved_at_ms"]
    return AnomalyView(
        id=anomaly["id"],
        kind=anomaly["kind"],
        detail=anomaly["detail"],
        created_at=iso(anomaly["created_at_ms"]),
        resolved_at=None if resolved is None else iso(resolved),
    )


def _event_view(event: dict[str, Any]) -> EventView:
    return EventView(
        id=event["id"],
        native_code=event["native_code"],
        state=state_view(event["state_code"]),
        kitchen_step=event["kitchen_step"],
        partial=event["partial"],
        refund_amount=event["refund_amount"],
        reason=event["reason"],
        platform_time=iso(event["platform_time_ms"]),
        received_at=iso(event["received_at_ms"]),
    )


def find_order(reader: Reader, order_id: int) -> OrderView | None:
    """One order with its events, or None: one statement."""
    row = reader.execute(ORDER_ROWS_WITH_EVENTS.where(Order.id == order_id)).first()
    return None if row is None else order_view(row._mapping)


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
    reader: Reader,
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
    by when they were last updated (then id). A page is one statement however many orders
    it holds; raises :class:`BadCursor` for a cursor of another listing."""
    statement = ORDER_ROWS
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
    rows = reader.execute(statement.order_by(*ordering).limit(limit + 1)).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = f"{last['updated_at_ms']}.{last['id']}" if by_update else str(last["id"])
    return OrderPage(items=[order_view(row) for row in rows[:limit]], next_cursor=next_cursor)


def find_platform_order(
    reader: Reader, platform: str, platform_order_id: str
) -> PlatformOrderView | None:
    """The ``waimai_order`` view, or None for an order the bridge has never seen."""
    row = reader.execute(
        select(PlatformOrder.state_code, PlatformOrder.order_state, PlatformOrder.order_id).where(
            PlatformOrder.platform == platform, PlatformOrder.platform_order_id == platform_order_id
        )
    ).first()
    if row is None:
        return None
    return PlatformOrderView(
        state=state_view(row.state_code),
        order_state=None if row.order_state is None else OrderState(row.order_state),
        stored=row.order_id is not None,
        order_id=row.order_id,
    )

"""The read API's statements: an order, or a page of orders, with its rows in one statement.

An order's lines, anomalies and (for one order) events come back as JSON arrays gathered by
correlated subqueries, so a read is one statement: one round trip, and one snapshot of the
order without a transaction around it. Each kind of row is a table of its fields, in the
order the JSON arrays hold them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, ScalarSelect, Select, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from waimai_bridge.store.tables import Anomaly, Order, OrderEvent, OrderItem, PlatformOrder

ITEM_FIELDS: Mapping[str, Any] = {
    "line": OrderItem.line,
    "sku_code": OrderItem.sku_code,
    "platform_sku_id": OrderItem.platform_sku_id,
    "name": OrderItem.name,
    "quantity": OrderItem.quantity,
    "unit_original": OrderItem.unit_original_fen,
    "unit_paid": OrderItem.unit_paid_fen,
    "product_id": OrderItem.product_id,
    "unmapped": OrderItem.unmapped,
}
"""An order line's fields, by its first (``line``) in order."""

ANOMALY_FIELDS: Mapping[str, Any] = {
    "id": Anomaly.id,
    "kind": Anomaly.kind,
    "detail": Anomaly.detail,
    "created_at_ms": Anomaly.created_at_ms,
    "resolved_at_ms": Anomaly.resolved_at_ms,
}
"""An anomaly's fields, oldest (lowest ``id``) first."""

EVENT_FIELDS: Mapping[str, Any] = {
    "id": OrderEvent.id,
    "native_code": OrderEvent.native_code,
    "state_code": OrderEvent.state_code,
    "kitchen_step": OrderEvent.kitchen_step,
    "partial": OrderEvent.partial,
    "refund_amount": OrderEvent.refund_amount_fen,
    "reason": OrderEvent.reason,
    "platform_time_ms": OrderEvent.platform_time_ms,
    "received_at_ms": OrderEvent.received_at_ms,
}
"""An event's fields (its payload left out), in arrival (``id``) order."""

ORDER_FIELDS: Mapping[str, Any] = {
    "id": Order.id,
    "platform": Order.platform,
    "platform_order_id": Order.platform_order_id,
    "store_id": Order.store_id,
    "state": Order.state,
    "rider_state": Order.rider_state,
    "state_code": PlatformOrder.state_code,
    "saved_state": PlatformOrder.order_state,
    "price": Order.price,
    "details": PlatformOrder.details,
    "refunded_amount": Order.refunded_amount_fen,
    "net_income": Order.net_income_fen,
    "income_rule": Order.income_rule,
    "created_at_ms": Order.created_at_ms,
    "updated_at_ms": Order.updated_at_ms,
}
"""The order's own fields and its platform order's."""


class json_rows(GenericFunction[Any]):  # noqa: N801 - a SQL function, named as SQL names them
    """The rows of a (correlated) subquery as one JSON array of arrays, ``[]`` for none; in
    no particular order."""

    type = JSON()
    inherit_cache = True
    name = "json_rows"


@compiles(json_rows, "postgresql")
def _json_rows_postgresql(function: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    values = compiler.process(function.clauses, **kw)
    return f"coalesce(json_agg(json_build_array({values})), '[]')"


@compiles(json_rows, "sqlite")
def _json_rows_sqlite(function: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(function.clauses, **kw)}))"


def _rows_of(fields: Mapping[str, Any], key: Any, owner: Any) -> ScalarSelect[Any]:
    return select(json_rows(*fields.values())).where(key == owner).scalar_subquery()


def _order_rows(*, with_events: bool) -> Select[Any]:
    """Orders joined to their platform orders, each with ``items`` and ``anomalies`` (and,
    ``with_events``, ``events``): JSON arrays of the rows of :data:`ITEM_FIELDS`,
    :data:`ANOMALY_FIELDS` and :data:`EVENT_FIELDS`."""
    gathered = {
        "items": _rows_of(ITEM_FIELDS, OrderItem.order_id, Order.id),
        "anomalies": _rows_of(ANOMALY_FIELDS, Anomaly.platform_order_pk, PlatformOrder.id),
    }
    if with_events:
        gathered["events"] = _rows_of(EVENT_FIELDS, OrderEvent.platform_order_pk, PlatformOrder.id)
    columns = [column.label(name) for name, column in {**ORDER_FIELDS, **gathered}.items()]
    return select(*columns).join_from(Order, PlatformOrder, PlatformOrder.order_id == Order.id)


def records(fields: Mapping[str, Any], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """The rows of a JSON array :data:`ORDER_ROWS` gathered, as records of ``fields``, in
    the order of their first field."""
    return [dict(zip(fields, row, strict=True)) for row in sorted(rows, key=lambda row: row[0])]


ORDER_ROWS = _order_rows(with_events=False)
"""Orders with their ``items`` and ``anomalies``: what a page of orders reads."""
ORDER_ROWS_WITH_EVENTS = _order_rows(with_events=True)
"""Orders with their ``items``, ``anomalies`` and ``events``: what one order reads."""

"""Realistic own_pos messages, for tests, fixtures and the demo.

Each function returns one message of the push format (a ``dict`` ready for
:func:`waimai_bridge_own_pos.testing.signed_push`); every amount is integer fen. The
``message_id`` defaults to ``"<order_id>:<event>:<event_time_ms>"``, unique per change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Line:
    """An order line: a dish with the chain's own SKU code, prices in fen."""

    sku_code: str
    name: str
    unit_price_fen: int
    quantity: int = 1
    unit_paid_fen: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The line as the format writes it (``unit_paid_fen`` only when it differs)."""
        line: dict[str, Any] = {
            "sku_code": self.sku_code,
            "name": self.name,
            "quantity": self.quantity,
            "unit_price_fen": self.unit_price_fen,
        }
        if self.unit_paid_fen is not None:
            line["unit_paid_fen"] = self.unit_paid_fen
        return line


DEFAULT_LINES = (
    Line("SKU-1001", "宫保鸡丁-大份[微辣]", 2800),
    Line("SKU-2002-330", "可乐-330ml", 500, quantity=2, unit_paid_fen=400),
)
"""Goods of 3,800 fen, 200 of them off the cola's price."""


def message(
    event: str,
    order_id: str,
    store_code: str,
    event_time_ms: int,
    *,
    message_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A message of ``event`` with the five common fields and ``fields``."""
    return {
        "message_id": message_id or f"{order_id}:{event}:{event_time_ms}",
        "store_code": store_code,
        "order_id": order_id,
        "event": event,
        "event_time_ms": event_time_ms,
        **fields,
    }


def new_order(
    order_id: str,
    store_code: str,
    event_time_ms: int,
    *,
    lines: Sequence[Line] = DEFAULT_LINES,
    packaging_fee_fen: int = 200,
    delivery_fee_fen: int = 500,
    order_discount_fen: int = 600,
    merchant_income_fen: int | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """An ``order.created`` message whose totals add up: ``discount_fen`` is the lines'
    own discounts plus ``order_discount_fen``, ``user_paid_fen`` what is left to pay."""
    goods = sum(line.unit_price_fen * line.quantity for line in lines)
    line_discount = sum(
        (line.unit_price_fen - line.unit_paid_fen) * line.quantity
        for line in lines
        if line.unit_paid_fen is not None
    )
    original = goods + packaging_fee_fen + delivery_fee_fen
    discount = line_discount + order_discount_fen
    order: dict[str, Any] = {
        "lines": [line.as_json() for line in lines],
        "original_amount_fen": original,
        "packaging_fee_fen": packaging_fee_fen,
        "delivery_fee_fen": delivery_fee_fen,
        "discount_fen": discount,
        "user_paid_fen": original - discount,
    }
    if merchant_income_fen is not None:
        order["merchant_income_fen"] = merchant_income_fen
    return message(
        "order.created", order_id, store_code, event_time_ms, message_id=message_id, order=order
    )


def cancelled(
    order_id: str,
    store_code: str,
    event_time_ms: int,
    *,
    order_accepted: bool,
    reason: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """An ``order.cancelled`` message, before or after the store accepted the order."""
    extra: dict[str, Any] = {"order_accepted": order_accepted}
    if reason is not None:
        extra["reason"] = reason
    return message(
        "order.cancelled", order_id, store_code, event_time_ms, message_id=message_id, **extra
    )


def refund(
    event: str,
    order_id: str,
    store_code: str,
    event_time_ms: int,
    *,
    order_completed: bool,
    partial: bool = False,
    amount_fen: int | None = None,
    lines: Sequence[tuple[str, str, int, int]] = (),
    reason: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A ``refund.*`` message; ``lines`` are (sku code, name, quantity, amount in fen).

    ``refund.withdrawn`` and ``refund.rejected`` carry no ``refund`` object.
    """
    extra: dict[str, Any] = {"order_completed": order_completed}
    if event in ("refund.requested", "refund.agreed"):
        money: dict[str, Any] = {"partial": partial}
        if amount_fen is not None:
            money["amount_fen"] = amount_fen
        if lines:
            money["lines"] = [
                {"sku_code": sku, "name": name, "quantity": quantity, "amount_fen": amount}
                for sku, name, quantity, amount in lines
            ]
        extra["refund"] = money
    if reason is not None:
        extra["reason"] = reason
    return message(event, order_id, store_code, event_time_ms, message_id=message_id, **extra)

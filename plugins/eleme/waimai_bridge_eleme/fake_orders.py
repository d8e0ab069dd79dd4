"""What the fake Eleme API knows of each order: the OOrder ``eleme.order.getOrder`` answers,
and the "already" error a repeated action gets (the ``ALREADY_*`` answers of
:mod:`waimai_bridge_eleme.assumptions`).

An order is its full OOrder (stored, or from a type-10 push) with two fields that move:
``status`` (OOrderStatus) and ``refundStatus`` (OOrderRefundStatus). The platform's own
events (pushes the fake is told of, a user's new application) set them, and so do the
actions; the latest wins, and :meth:`FakeOrders.clear` forgets only what the actions did. An
action whose field is already past it is answered with the "already" error of the field's
value and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from waimai_bridge_eleme import assumptions as facts

AGREED: Final = facts.REQUEST_STATUS_AFTER["agreed"]
REJECTED: Final = facts.REQUEST_STATUS_AFTER["rejected"]


@dataclass(frozen=True)
class Effect:
    """What one API method does to an order: the field it sets, to what, and the values of
    that field it cannot leave, each with the error Eleme answers there."""

    field: str
    becomes: str
    past: Mapping[str, tuple[str, str]]


_REQUEST_ANSWERED = {AGREED: facts.REQUEST_ALREADY_AGREED, REJECTED: facts.REQUEST_ALREADY_REJECTED}

EFFECTS: Final[Mapping[str, Effect]] = {
    "eleme.order.confirmOrderLite": Effect(
        "status",
        "valid",
        {
            "valid": facts.ALREADY_CONFIRMED,
            "refunding": facts.ALREADY_CONFIRMED,
            "settled": facts.ALREADY_CONFIRMED,
            "invalid": facts.ALREADY_CANCELLED,
        },
    ),
    "eleme.order.cancelOrderLite": Effect(
        "status", "invalid", {"invalid": facts.ALREADY_CANCELLED}
    ),
    "eleme.order.agreeRefundLite": Effect("refundStatus", AGREED, _REQUEST_ANSWERED),
    "eleme.order.disagreeRefundLite": Effect("refundStatus", REJECTED, _REQUEST_ANSWERED),
}
"""The action methods and what each does to an order."""

STATUS_PUSHES: Final[Mapping[int, str]] = {
    12: "valid",
    14: "invalid",
    15: "invalid",
    17: "invalid",
    18: "settled",
}
"""A status push's type → the OOrder ``status`` it tells of (its message's ``state``)."""
REQUEST_PUSHES: Final[Mapping[int, str]] = {
    **{t: "applied" for t in (20, 30)},
    **{t: "noRefund" for t in (21, 31)},
    **{t: "rejected" for t in (22, 32)},
    **{t: "successful" for t in (23, 33)},
    **{t: "arbitrating" for t in (24, 34)},
}
"""A cancel or refund push's type → the OOrder ``refundStatus`` it tells of."""
LATER_STATUS: Final = "valid"
"""The ``status`` of an order the fake knows only from later messages (a delivery, a
request, an action): past acceptance."""


class FakeOrders:
    """The orders of the fake (not thread-safe: the fake calls it under its lock)."""

    def __init__(self) -> None:
        self._full: dict[str, dict[str, Any]] = {}
        self._told: dict[tuple[str, str], str] = {}
        self._acted: dict[tuple[str, str], str] = {}

    def put(self, order: Mapping[str, Any]) -> None:
        """Store a full OOrder, keyed by its ``id``."""
        self._full[str(order["id"])] = dict(order)

    def pushed(self, push_type: int, message: Mapping[str, Any]) -> None:
        """Take in what a push tells of its order (the full order, a status, a request)."""
        if push_type == 10 and message.get("id") is not None:
            self.put(message)
            return
        order_id = message.get("orderId")
        if order_id is None:
            return
        if push_type in STATUS_PUSHES:
            state = message.get("state")
            self._tell(str(order_id), "status", state if state else STATUS_PUSHES[push_type])
        elif push_type in REQUEST_PUSHES:
            self._tell(str(order_id), "refundStatus", REQUEST_PUSHES[push_type])
        else:  # a delivery or a reminder: the order exists
            self._told.setdefault((str(order_id), "known"), "yes")

    def open_request(self, order_id: str) -> None:
        """A new cancel/refund application of the order: it can be answered again."""
        self._tell(order_id, "refundStatus", "applied")

    def act(self, method: str, order_id: str) -> tuple[str, str] | None:
        """Apply ``method`` to the order; the error (code, message) Eleme answers instead
        when the order is already past it, None when it succeeds."""
        effect = EFFECTS.get(method)
        if effect is None:
            return None
        current = self._value(order_id, effect.field)
        if current is not None and current in effect.past:
            return effect.past[current]
        self._acted[order_id, effect.field] = effect.becomes
        return None

    def order(self, order_id: str) -> dict[str, Any] | None:
        """The OOrder ``getOrder`` answers, or None for an order the fake does not know. One
        it knows only from later messages or actions is ``{id, orderId, status,
        refundStatus}``: the real platform always has the full order."""
        full = self._full.get(order_id)
        known = any(key[0] == order_id for key in (*self._told, *self._acted))
        if full is None and not known:
            return None
        order = dict(full) if full is not None else {"id": order_id, "orderId": order_id}
        order["status"] = self._value(order_id, "status") or (
            LATER_STATUS if full is None else "unprocessed"
        )
        order["refundStatus"] = self._value(order_id, "refundStatus") or "noRefund"
        return order

    def clear(self) -> None:
        """Forget what the actions did (stored orders and what pushes told stay)."""
        self._acted.clear()

    def _tell(self, order_id: str, field: str, value: str) -> None:
        self._told[order_id, field] = value
        self._acted.pop((order_id, field), None)  # the platform's event is the later one

    def _value(self, order_id: str, field: str) -> str | None:
        key = (order_id, field)
        if key in self._acted:
            return self._acted[key]
        if key in self._told:
            return self._told[key]
        value = self._full.get(order_id, {}).get(field)
        return value if isinstance(value, str) else None

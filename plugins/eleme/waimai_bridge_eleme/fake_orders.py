"""What the fake Eleme API remembers of each order, to answer a repeated action the way the
plugin assumes Eleme does (the ``ALREADY_*`` answers of :mod:`waimai_bridge_eleme.assumptions`).

An order has two slots: the order itself (accepted, cancelled) and its cancel/refund
application (agreed, rejected). An action the slot is already past is answered with the
"already" error of the slot's state and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from waimai_bridge_eleme import assumptions as facts


@dataclass(frozen=True)
class Effect:
    """What one API method does to an order: the slot it sets, to what, and the states of
    that slot it cannot leave."""

    slot: str
    becomes: str
    past: frozenset[str]


_ANSWERED = frozenset({"agreed", "rejected"})

EFFECTS: Final[Mapping[str, Effect]] = {
    "eleme.order.confirmOrderLite": Effect(
        "order", "confirmed", frozenset({"confirmed", "cancelled"})
    ),
    "eleme.order.cancelOrderLite": Effect("order", "cancelled", frozenset({"cancelled"})),
    "eleme.order.agreeRefundLite": Effect("request", "agreed", _ANSWERED),
    "eleme.order.disagreeRefundLite": Effect("request", "rejected", _ANSWERED),
}

ALREADY: Final[Mapping[str, tuple[str, str]]] = {
    "confirmed": facts.ALREADY_CONFIRMED,
    "cancelled": facts.ALREADY_CANCELLED,
    "agreed": facts.REQUEST_ALREADY_AGREED,
    "rejected": facts.REQUEST_ALREADY_REJECTED,
}
"""A slot's state → the error (code, message) a call it forbids is answered with."""


class FakeOrders:
    """The state of each order the fake was asked to act on (not thread-safe: the fake
    calls it under its lock)."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], str] = {}

    def act(self, method: str, order_id: str) -> tuple[str, str] | None:
        """Apply ``method`` to the order; the error (code, message) Eleme answers instead
        when the order is already past it, None when it succeeds."""
        effect = EFFECTS.get(method)
        if effect is None:
            return None
        current = self._states.get((order_id, effect.slot))
        if current in effect.past:
            return ALREADY[current]
        self._states[order_id, effect.slot] = effect.becomes
        return None

    def open_request(self, order_id: str) -> None:
        """A new cancel/refund application of the order: it can be answered again."""
        self._states.pop((order_id, "request"), None)

    def clear(self) -> None:
        """Forget every order."""
        self._states.clear()

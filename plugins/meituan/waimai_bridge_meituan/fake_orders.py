"""What the fake Meituan API remembers of each order, to answer a repeated action the way
the plugin assumes Meituan does (the ``ALREADY_*`` answers of
:mod:`waimai_bridge_meituan.assumptions`).

An order has two slots: the order itself (confirmed, cancelled) and its refund application
(agreed, rejected). An action the slot is already past is answered with the "already" error
of the slot's state and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from waimai_bridge_meituan import assumptions as facts


@dataclass(frozen=True)
class Effect:
    """What one API path does to an order: the slot it sets, to what, and the states of
    that slot it cannot leave."""

    slot: str
    becomes: str
    past: frozenset[str]


_ANSWERED = frozenset({"agreed", "rejected"})

EFFECTS: Final[Mapping[str, Effect]] = {
    "order/confirm": Effect("order", "confirmed", frozenset({"confirmed", "cancelled"})),
    "order/cancel": Effect("order", "cancelled", frozenset({"cancelled"})),
    "order/refund/agree": Effect("refund", "agreed", _ANSWERED),
    "order/refund/reject": Effect("refund", "rejected", _ANSWERED),
}

ALREADY: Final[Mapping[str, tuple[str, str]]] = {
    "confirmed": facts.ALREADY_CONFIRMED,
    "cancelled": facts.ALREADY_CANCELLED,
    "agreed": facts.REFUND_ALREADY_AGREED,
    "rejected": facts.REFUND_ALREADY_REJECTED,
}
"""A slot's state → the error (code, msg) a call it forbids is answered with."""


class FakeOrders:
    """The state of each order the fake was asked to act on (not thread-safe: the fake
    calls it under its lock)."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], str] = {}

    def act(self, path: str, order_id: str) -> tuple[str, str] | None:
        """Apply the call of ``path`` to the order; the error (code, msg) Meituan answers
        instead when the order is already past it, None when it succeeds."""
        effect = EFFECTS.get(path)
        if effect is None:
            return None
        current = self._states.get((order_id, effect.slot))
        if current in effect.past:
            return ALREADY[current]
        self._states[order_id, effect.slot] = effect.becomes
        return None

    def open_request(self, order_id: str) -> None:
        """A new refund application of the order: it can be answered again."""
        self._states.pop((order_id, "refund"), None)

    def clear(self) -> None:
        """Forget every order."""
        self._states.clear()

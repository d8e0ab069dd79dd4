"""own_pos events → baseline states (SPEC §4.1), read from the manifest's code table.

The table is the manifest's ``native_codes``:

- an event with one ``maps_to`` state becomes it (``order.accepted`` → 12);
- an event with two lists the state *before* and the state *after* a point of the order's
  life, and a flag of the message says which one it is — the POS knows, so nothing is
  guessed and the mapping stays a pure function of the event:
  ``order.cancelled`` by ``order_accepted`` (14 / 17) and ``refund.*`` by
  ``order_completed`` (the cancel family 20–23 / the refund family 30–33);
- an event with none is a kitchen step (:data:`KITCHEN_STEPS`): no platform state, it only
  moves fulfilment forward.

Cancel and refund events add what the state machine needs to know about the money.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from waimai_bridge.plugin_api import (
    MAX_NAME_LENGTH,
    MAX_SKU_LENGTH,
    MAX_TEXT_LENGTH,
    KitchenStep,
    NativeEvent,
    PlatformState,
    RefundedItem,
    StateChange,
    read_manifest,
)
from waimai_bridge_own_pos.fields import Fields, Malformed

KITCHEN_STEPS: Mapping[str, KitchenStep] = {
    "kitchen.accept": KitchenStep.ACCEPTED,
    "kitchen.start_preparing": KitchenStep.PREPARING,
    "kitchen.mark_ready": KitchenStep.READY,
}
"""The kitchen events and the step of the chain's own kitchen each reports."""

DECIDED_BY: Mapping[str, str] = {
    "order.cancelled": "order_accepted",
    "refund.requested": "order_completed",
    "refund.withdrawn": "order_completed",
    "refund.rejected": "order_completed",
    "refund.agreed": "order_completed",
}
"""Events with a state before and after: the flag of the message that chooses."""

MONEY_REQUIRED = frozenset({"refund.requested", "refund.agreed"})
"""Refund events that must say what is refunded (the ``refund`` object)."""


@cache
def table() -> Mapping[str, tuple[PlatformState, ...]]:
    """Event name → the baseline states of its ``maps_to``, in the manifest's order."""
    manifest = read_manifest(__package__, "waimai-bridge-own-pos")
    return {
        row["code"]: tuple(PlatformState(state) for state in row["maps_to"])
        for row in manifest["native_codes"]
    }


def state_change(event: NativeEvent) -> StateChange:
    """The baseline meaning of one own_pos event; :class:`Malformed` names a bad field."""
    code = event.native_code
    if code in KITCHEN_STEPS:
        return StateChange(state=None, kitchen_step=KITCHEN_STEPS[code])
    states = table()[code]
    if code not in DECIDED_BY:
        [state] = states
        return StateChange(state=state)
    message = Fields.of(event.payload)
    before, after = states
    state = after if message.flag(DECIDED_BY[code]) else before
    reason = message.optional_text("reason", max_length=MAX_TEXT_LENGTH)
    if code == "order.cancelled":
        return StateChange(state=state, reason=reason)
    return _refund(message, state, reason, required=code in MONEY_REQUIRED)


def _refund(
    message: Fields, state: PlatformState, reason: str | None, *, required: bool
) -> StateChange:
    """A cancel or refund event with the ``refund`` object's money."""
    if not required and not message.has("refund"):
        return StateChange(state=state, reason=reason)
    refund = message.object("refund")
    partial = refund.flag("partial")
    amount = refund.optional_fen("amount_fen")
    if partial and amount is None:
        raise Malformed(refund.at("amount_fen"), "is missing; a partial refund states its amount")
    return StateChange(
        state=state,
        partial=partial,
        refund_amount_fen=amount,
        refunded_items=[
            RefundedItem(
                name=line.text("name", max_length=MAX_NAME_LENGTH),
                quantity=line.count("quantity"),
                sku_code=line.optional_text("sku_code", max_length=MAX_SKU_LENGTH),
                amount_fen=line.optional_fen("amount_fen"),
            )
            for line in refund.objects("lines", required=False)
        ],
        reason=reason,
    )

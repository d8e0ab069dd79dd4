"""Eleme push types → baseline states (SPEC §4.1), read from the manifest's code table.

Eleme's types are the baseline itself, so the table is the manifest's ``native_codes``:
a type with one ``maps_to`` state becomes it, a type with none is kept in the log and
ignored. Cancel and refund messages add what the state machine needs to know about the
money: partial or not, how much, which lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from waimai_bridge.plugin_api import (
    MAX_TEXT_LENGTH,
    NativeEvent,
    PlatformState,
    RefundedItem,
    StateChange,
    read_manifest,
    yuan_to_fen,
)
from waimai_bridge_eleme import messages
from waimai_bridge_eleme.assumptions import REFUND_LINE_PRICE_IS_UNIT_PRICE

PARTIAL_REFUND_TYPE = "part"
"""``refundType`` of a partial cancel or refund (ORefundType ``normal`` | ``part``, §1.8)."""


@cache
def table() -> Mapping[str, PlatformState | None]:
    """Native code → the baseline state it maps to (None: ignored by the state machine)."""
    manifest = read_manifest(__package__, "waimai-bridge-eleme")
    return {
        row["code"]: PlatformState(row["maps_to"][0]) if row["maps_to"] else None
        for row in manifest["native_codes"]
    }


def state_change(event: NativeEvent) -> StateChange:
    """The baseline meaning of one Eleme event."""
    state = table()[event.native_code]
    if messages.kind_of(int(event.native_code)) is not messages.Kind.REFUND:
        return StateChange(state=state)
    message = event.payload
    total = message.get("totalPrice")
    return StateChange(
        state=state,
        partial=message.get("refundType") == PARTIAL_REFUND_TYPE,
        refund_amount_fen=None if total is None else _fen(total, "totalPrice"),
        refunded_items=[_refunded(line) for line in message.get("goodsList") or []],
        # the user's words: shortened to what the contract holds, not refused for length
        reason=str(message["reason"])[:MAX_TEXT_LENGTH] if message.get("reason") else None,
    )


def _refunded(line: Any) -> RefundedItem:
    if not isinstance(line, Mapping):
        raise ValueError("a goodsList line is not an object")
    quantity = line.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise ValueError(f"goodsList line {line.get('name')!r}: quantity {quantity!r}")
    price = line.get("price")
    amount = None
    if price is not None and REFUND_LINE_PRICE_IS_UNIT_PRICE:
        amount = _fen(price, "goodsList price") * quantity
    return RefundedItem(name=str(line.get("name") or "?"), quantity=quantity, amount_fen=amount)


def _fen(yuan: Any, field: str) -> int:
    try:
        return yuan_to_fen(yuan)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None

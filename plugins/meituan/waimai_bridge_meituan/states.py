"""Meituan's native codes into the Eleme baseline of SPEC §4.1, as a table.

:data:`STATES` gives every native code its baseline state; two things only the payload
decides are read by the small function below it: a cancel before or after acceptance (the
``reason_code``, :data:`~waimai_bridge_meituan.assumptions.CANCELLED_BEFORE_ACCEPTANCE`)
and, for partial refunds, the amount (``money``) and the refunded lines (``food``).

Meituan's refund pushes do not say whether the order was completed, so they always become
the refund family (30–33), never the cancel family (20–23): SPEC §5 folds both families by
the same rules, so the order's state is the same either way (only the platform state's
label and the tie rank at an equal platform second differ).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from waimai_bridge.plugin_api import (
    MAX_INT64,
    MAX_TEXT_LENGTH,
    NativeEvent,
    PlatformState,
    RefundedItem,
    StateChange,
    yuan_to_fen,
)
from waimai_bridge_meituan import assumptions as facts

CANCEL: Final = "order_cancelled"
PARTIAL_PREFIX: Final = "partial_refund."
REFUND_PREFIXES: Final = ("refund.", PARTIAL_PREFIX)

STATES: Final[dict[str, PlatformState | None]] = {
    "order_paid": PlatformState.CREATED,
    "order_confirmed": PlatformState.ACCEPTED,
    "order_completed": PlatformState.COMPLETED,
    CANCEL: PlatformState.FORCE_INVALIDATED,  # CANCELLED when before acceptance, below
    "refund.apply": PlatformState.REFUND_REQUESTED,
    "refund.agree": PlatformState.REFUND_AGREED,
    "refund.reject": PlatformState.REFUND_REJECTED,
    "refund.cancelRefund": PlatformState.REFUND_WITHDRAWN,
    "refund.cancelRefundComplaint": PlatformState.REFUND_WITHDRAWN,
    "partial_refund.part": PlatformState.REFUND_REQUESTED,
    "partial_refund.apply": PlatformState.REFUND_REQUESTED,
    "partial_refund.agree": PlatformState.REFUND_AGREED,
    "partial_refund.reject": PlatformState.REFUND_REJECTED,
    "partial_refund.cancelRefund": PlatformState.REFUND_WITHDRAWN,
    "partial_refund.cancelRefundComplaint": PlatformState.REFUND_WITHDRAWN,
    **{
        f"logistics.{status}": None if state is None else PlatformState(state)
        for status, state in facts.LOGISTICS_STATES.items()
    },
    "refund_status": None,
    "settlement": None,
    "reminder": None,
}
"""Every native code of the manifest and its baseline state (None: kept, ignored)."""

CANCEL_BEFORE_ACCEPTANCE_STATE: Final = PlatformState.CANCELLED


def map_event(event: NativeEvent) -> StateChange:
    """The baseline state change of a Meituan native event (a pure function of it)."""
    code = event.native_code
    payload = event.payload
    if code == CANCEL:
        return cancel_change(payload)
    state = STATES[code]
    if not code.startswith(REFUND_PREFIXES):
        return StateChange(state=state)
    reason = _words(payload.get("reason")) or None
    if not code.startswith(PARTIAL_PREFIX):
        return StateChange(state=state, partial=False, reason=reason)
    money = _text(payload.get("money"))
    return StateChange(
        state=state,
        partial=True,
        refund_amount_fen=_fen(money, "money") if money else None,
        refunded_items=refunded_items(payload.get("food")),
        reason=reason,
    )


def cancel_change(payload: Mapping[str, Any]) -> StateChange:
    """A cancel push: 14 before acceptance, 17 after, decided by ``reason_code``; the
    reason code is kept in front of the reason."""
    reason_code = _text(payload.get("reason_code"))
    before = reason_code in facts.CANCELLED_BEFORE_ACCEPTANCE
    reason = " ".join(part for part in (reason_code, _text(payload.get("reason"))) if part)
    return StateChange(
        state=CANCEL_BEFORE_ACCEPTANCE_STATE if before else STATES[CANCEL],
        reason=_words(reason) or None,
    )


def refunded_items(food: object) -> list[RefundedItem]:
    """The refunded lines of a partial refund's ``food`` list (lines stating no count of
    at least one are left out)."""
    if not isinstance(food, list):
        return []
    items: list[RefundedItem] = []
    for line in food:
        if not isinstance(line, dict):
            continue
        count = whole_number(line.get("count"))
        if count is None or count < 1:
            continue
        app_food_code = _text(line.get("app_food_code")) or None
        sku_code = _text(line.get("sku_id")) or app_food_code
        refund_price = _text(line.get("refund_price"))
        items.append(
            RefundedItem(
                name=_text(line.get("food_name")) or sku_code or "?",
                quantity=count,
                sku_code=sku_code,
                platform_sku_id=app_food_code,
                # refund_price is the refund per unit (§3.7, SDK FoodPartRefundParam)
                amount_fen=_fen(refund_price, "food refund_price") * count
                if refund_price
                else None,
            )
        )
    return items


def whole_number(value: object) -> int | None:
    """A count as an int (``2``, ``"2"``, ``2.0``), or None when it is not a whole number;
    ``ValueError`` for one beyond a signed 64-bit integer."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    try:
        number = Decimal(text) if len(text) <= MAX_NUMBER_TEXT else None
    except InvalidOperation:
        return None
    if number is None or (number.is_finite() and abs(number) > MAX_INT64):
        raise ValueError(f"{text[:24]!r} is too large a number")
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


MAX_NUMBER_TEXT = 64
"""The longest text read as a number; a longer one is refused, not parsed."""


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _fen(yuan: str, field: str) -> int:
    try:
        return yuan_to_fen(yuan)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def _words(value: object) -> str:
    """A reason, the user's or the platform's words: shortened to what the contract holds,
    never refused for its length."""
    return _text(value)[:MAX_TEXT_LENGTH]

"""An order's details read leniently from a platform's payload: they are only shown, never a
reason to refuse an order, so a value the contract cannot hold is read as not stated and a
long remark is shortened to the contract's bound."""

from __future__ import annotations

from waimai_bridge.bounds import MAX_NAME_LENGTH
from waimai_bridge.models import OrderDetails

MAX_DAY_SEQ = 1_000_000
"""The largest day sequence number the contract holds."""


def shown_details(day_seq: object, remark: object) -> OrderDetails:
    """The :class:`~waimai_bridge.models.OrderDetails` of the payload's values as sent: a day
    sequence number as a number or a string of digits, a remark as text."""
    return OrderDetails(day_seq=_day_seq(day_seq), remark=_remark(remark))


def _day_seq(value: object) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 7 else None
    if type(value) is not int or not 0 <= value <= MAX_DAY_SEQ:
        return None
    return value


def _remark(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip()[:MAX_NAME_LENGTH] or None

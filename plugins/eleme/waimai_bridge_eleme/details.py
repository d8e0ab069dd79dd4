"""An Eleme OOrder's day sequence number and the customer's remark (platforms.md §1.6).

``daySn`` (当日流水号) and ``description`` (备注) are OOrder fields (confirmed: the SDK's
OOrder [S-E1d], the doc [S-E5c] and real payloads [S-E7], where ``daySn`` is a JSON
number). They are only shown, never a reason to refuse an order: a value that is not what
the contract holds (a day number that is not a whole number from 0 to 1 000 000, a remark
that is not text) is read as not stated, and a remark longer than the contract's bound is
shortened to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waimai_bridge.plugin_api import MAX_NAME_LENGTH, OrderDetails

MAX_DAY_SEQ = 1_000_000
"""The largest day sequence number the contract holds."""


def details(order: Mapping[str, Any]) -> OrderDetails:
    """The ``daySn`` and ``description`` of an OOrder message, each None when not stated."""
    return OrderDetails(
        day_seq=day_seq(order.get("daySn")), remark=remark(order.get("description"))
    )


def day_seq(value: object) -> int | None:
    """A day sequence number sent as a number or a string of digits; None for anything else."""
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 7 else None
    if type(value) is not int or not 0 <= value <= MAX_DAY_SEQ:
        return None
    return value


def remark(value: object) -> str | None:
    """The remark as stated, at most ``MAX_NAME_LENGTH`` characters; None when empty."""
    if not isinstance(value, str):
        return None
    return value.strip()[:MAX_NAME_LENGTH] or None

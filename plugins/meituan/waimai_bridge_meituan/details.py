"""A Meituan order's day sequence number and the customer's remark (platforms.md §3.4).

``day_seq`` (the order's number in the store's day) and ``caution`` (备注) are fields of the
order pushes (已支付 / 已确认 / 已完成) and of ``order/getOrderDetail`` (confirmed: go-meituan
[S-M3a], kuangcao [S-M4b]); ``day_seq`` is pushed only to an app subscribed to it
(开发者中心→订单订阅字段), so an order may come without it. ``caution`` is one of the fields
Meituan URL-encodes twice: it is read as the push's verified reading decoded it
(:mod:`.push`). Whether Meituan writes more than the customer's words into ``caution`` (the
research sample adds the privacy number, 收餐人隐私号) is not confirmed [G]: it is shown as
stated. Neither field is a reason to refuse an order: a value that is not what the contract
holds is read as not stated, and a longer remark is shortened to the contract's bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waimai_bridge.plugin_api import MAX_NAME_LENGTH, OrderDetails

MAX_DAY_SEQ = 1_000_000
"""The largest day sequence number the contract holds."""


def details(payload: Mapping[str, Any]) -> OrderDetails | None:
    """The ``day_seq`` and ``caution`` of an order push, each None when not stated; None for
    a push without an order (its ``detail`` lines)."""
    if not isinstance(payload.get("detail"), list):
        return None
    return OrderDetails(
        day_seq=day_seq(payload.get("day_seq")), remark=remark(payload.get("caution"))
    )


def day_seq(value: object) -> int | None:
    """A day sequence number sent as digits (a form field) or a JSON number (an API read);
    None for anything else."""
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

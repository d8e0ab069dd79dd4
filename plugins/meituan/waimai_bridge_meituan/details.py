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

from waimai_bridge.plugin_api import OrderDetails, shown_details


def details(payload: Mapping[str, Any]) -> OrderDetails | None:
    """The ``day_seq`` and ``caution`` of an order push, each None when not stated; None for
    a push without an order (its ``detail`` lines)."""
    if not isinstance(payload.get("detail"), list):
        return None
    return shown_details(payload.get("day_seq"), payload.get("caution"))

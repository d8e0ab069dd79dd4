"""The canonical price breakdown (SPEC §6) of an Eleme OOrder (platforms.md §1.6, §5).

Eleme sends yuan as JSON numbers; every figure here is converted to integer fen exactly.
The figures Eleme states — ``totalPrice`` (user paid), ``income`` (店铺实收),
``originalPrice`` — are taken as stated, never recomputed. ``income`` and ``serviceFee``
missing from a payload give a null ``merchant_income`` / ``commission``, never 0; fees and
discounts missing are none (0); an order without ``totalPrice`` or ``originalPrice`` cannot
be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waimai_bridge.plugin_api import PriceBreakdown, PriceItem, yuan_to_fen
from waimai_bridge_eleme.assumptions import (
    HONGBAO_IS_PLATFORM_FUNDED,
    ITEM_ACTIVITY_PRICES_ARE_UNIT_PRICES,
)

GOODS_GROUPS = frozenset({"normal", "discount"})
"""Groups whose lines are goods: ``normal`` dishes and ``discount`` gifts (赠品); the
``extra`` group holds fees (OOrderDetailGroupType, platforms.md §1.6)."""

PACKING_LINE_ID = -70000
"""The 餐盒 line of the ``extra`` group: the same money as ``packageFee`` (§1.6)."""


def breakdown(order: Mapping[str, Any]) -> PriceBreakdown:
    """The price breakdown of an OOrder message; ``ValueError`` names a bad figure."""
    return PriceBreakdown(
        items=[_item(line) for line in _goods_lines(order)],
        original_amount=_required_fen(order, "originalPrice"),
        packaging_fee=_packaging_fee(order),
        delivery_fee=_fen(order, "deliverFee"),
        # shopPart/elemePart/serviceFee/hongbao are negative in real payloads (§1.6)
        merchant_discount=abs(_fen(order, "shopPart")),
        platform_discount=abs(_fen(order, "elemePart"))
        + (abs(_fen(order, "hongbao")) if HONGBAO_IS_PLATFORM_FUNDED else 0),
        user_paid=_required_fen(order, "totalPrice"),
        commission=_stated_fen(order, "serviceFee", absolute=True),
        merchant_income=_stated_fen(order, "income"),
    )


def _goods_lines(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    groups = order.get("groups") or []
    if not isinstance(groups, list):
        raise ValueError("groups is not a list")
    return [
        line
        for group in groups
        if isinstance(group, Mapping) and group.get("type", "normal") in GOODS_GROUPS
        for line in group.get("items") or []
    ]


def _item(line: Mapping[str, Any]) -> PriceItem:
    if not isinstance(line, Mapping) or not line.get("name"):
        raise ValueError("an order line has no name")
    unit_original = _fen(line, "price")
    # userPrice is the user's side of an item activity price; 0 means none [G: assumptions]
    user_price = _fen(line, "userPrice") if ITEM_ACTIVITY_PRICES_ARE_UNIT_PRICES else 0
    sku_id = line.get("skuId")
    return PriceItem(
        sku_code=str(line["extendCode"]) if line.get("extendCode") else None,
        platform_sku_id=None if sku_id in (None, "", -1) else str(sku_id),
        name=str(line["name"]),
        quantity=_quantity(line),
        unit_original=unit_original,
        unit_paid=user_price or unit_original,
    )


def _packaging_fee(order: Mapping[str, Any]) -> int:
    if order.get("packageFee") is not None:
        return _fen(order, "packageFee")
    lines = [
        line
        for group in order.get("groups") or []
        if isinstance(group, Mapping) and group.get("type") == "extra"
        for line in group.get("items") or []
        if isinstance(line, Mapping) and line.get("id") == PACKING_LINE_ID
    ]
    return sum(_fen(line, "total") for line in lines)


def _quantity(line: Mapping[str, Any]) -> int:
    quantity = line.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise ValueError(f"line {line.get('name')!r}: quantity {quantity!r} is not a count")
    return quantity


def _required_fen(source: Mapping[str, Any], key: str) -> int:
    if source.get(key) is None:
        raise ValueError(f"{key} is missing")
    return _fen(source, key)


def _stated_fen(source: Mapping[str, Any], key: str, *, absolute: bool = False) -> int | None:
    """A figure as stated, or None when the payload does not state it; ``absolute`` for a
    charge Eleme sends negative (``serviceFee``, §1.6)."""
    if source.get(key) is None:
        return None
    value = _fen(source, key)
    return abs(value) if absolute else value


def _fen(source: Mapping[str, Any], key: str) -> int:
    """A figure in fen; missing is 0 (a fee or discount the order does not have)."""
    value = source.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} is {value!r}, not an amount")
    try:
        return yuan_to_fen(value)
    except ValueError:
        raise ValueError(f"{key} is {value!r}, not an amount in yuan") from None

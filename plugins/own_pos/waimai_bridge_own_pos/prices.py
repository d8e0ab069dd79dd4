"""The canonical price breakdown (SPEC §6) of an ``order.created`` message.

The POS states every figure in integer fen and the breakdown takes them as stated, never
recomputed. The own channel has no platform: nothing is a platform discount and there is
no commission, so ``platform_discount`` and ``commission`` are 0, and the merchant income
is what the user paid unless the POS states another figure (e.g. after a payment fee).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waimai_bridge.plugin_api import MAX_NAME_LENGTH, MAX_SKU_LENGTH, PriceBreakdown, PriceItem
from waimai_bridge_own_pos.fields import Fields

ORDER_EVENT = "order.created"
"""The event that carries the order, and so its prices."""


def breakdown(message: Mapping[str, Any]) -> PriceBreakdown:
    """The price breakdown of an ``order.created`` message; :class:`Malformed` names a bad
    field."""
    order = Fields.of(message).object("order")
    user_paid = order.fen("user_paid_fen")
    return PriceBreakdown(
        items=[_item(line) for line in order.objects("lines")],
        original_amount=order.fen("original_amount_fen"),
        packaging_fee=order.fen("packaging_fee_fen", default=0),
        delivery_fee=order.fen("delivery_fee_fen", default=0),
        merchant_discount=order.fen("discount_fen", default=0),
        platform_discount=0,
        user_paid=user_paid,
        commission=0,
        merchant_income=order.fen("merchant_income_fen", default=user_paid),
    )


def _item(line: Fields) -> PriceItem:
    unit_price = line.fen("unit_price_fen")
    return PriceItem(
        sku_code=line.optional_text("sku_code", max_length=MAX_SKU_LENGTH),
        platform_sku_id=None,
        name=line.text("name", max_length=MAX_NAME_LENGTH),
        quantity=line.count("quantity"),
        unit_original=unit_price,
        unit_paid=line.fen("unit_paid_fen", default=unit_price),
    )

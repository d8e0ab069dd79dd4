"""The canonical price breakdown (SPEC §6) of a Meituan order push, every figure in fen.

Meituan sends yuan (元) except in ``poi_receive_detail`` (cents) and ``package_bag_money``
(fen) (platforms.md §3.4, §5). The user-paid total (``total``), the pre-discount total
(``original_price``), the merchant income (``wmPoiReceiveCent``) and the commission
(``foodShareFeeChargeByPoi``) are taken as stated; income and commission are null when the
app is not subscribed to 商家应收款详情 and the push does not carry them.

A line states one unit price, ``price``, and what it means is the store's
``price_semantics`` (§5, [C]): under ``discounted`` (Meituan's default) it is the price after
the item's activity (特价/折扣商品), so it is ``unit_paid``; under ``original`` (the app
subscribed to 替换折扣价为原价) it is the list price, ``unit_original``. The other figure is
the line's own ``original_price`` / ``actual_price`` where it states one (retail lines, [C]);
otherwise it is worked out from the order (see :func:`item_discount`) and spread over the
lines that state none, in proportion to their amounts (which line an activity was on is not
stated: [G]). Order-level discounts (满减, coupons …) are never in a line's price (§5, [C]):
they are the order's ``merchant_discount`` / ``platform_discount``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from waimai_bridge.plugin_api import (
    NativeEvent,
    PluginConfig,
    PriceBreakdown,
    PriceItem,
    yuan_to_fen,
)
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan.states import whole_number

PriceSemantics = Literal["discounted", "original"]
DEFAULT_SEMANTICS: Final[PriceSemantics] = "discounted"


def price_semantics(config: PluginConfig, store_id: str) -> PriceSemantics:
    """What a ``detail`` line's ``price`` means for this store: its binding's
    ``price_semantics`` if it has one, else the app's, else ``discounted`` (the platform's
    default; ``original`` when the app subscribed to 替换折扣价为原价, §5)."""
    binding = config.stores.get(store_id, {})
    value = binding.get("price_semantics") or config.settings.get("price_semantics")
    return "original" if value == "original" else DEFAULT_SEMANTICS


def breakdown(order: NativeEvent, config: PluginConfig) -> PriceBreakdown | None:
    """The price breakdown of an order push, or None when the push carries no order."""
    payload = order.payload
    detail = payload.get("detail")
    if not isinstance(detail, list) or not _text(payload.get("total")):
        return None
    semantics = price_semantics(config, order.store_id)
    lines = [line for line in detail if isinstance(line, dict)]
    read = [item for item in (price_item(line, semantics) for line in lines) if item]
    packaging = sum(box_fee(line) for line in lines) + _fen_or_zero(
        payload.get("package_bag_money")
    )
    delivery = yuan(payload.get("shipping_fee"))
    stated_original = _text(payload.get("original_price"))
    discount = item_discount(payload, semantics, read, packaging + delivery)
    items = spread(read, discount, semantics)
    original = (
        yuan(stated_original)
        if stated_original
        else sum(item.unit_original * item.quantity for item in items) + packaging + delivery
    )
    merchant_discount, platform_discount = discounts(payload)
    receive = payload.get("poi_receive_detail")
    receive = receive if isinstance(receive, dict) else {}
    return PriceBreakdown(
        items=items,
        original_amount=original,
        packaging_fee=packaging,
        delivery_fee=delivery,
        merchant_discount=merchant_discount,
        platform_discount=platform_discount,
        user_paid=yuan(payload.get("total")),
        commission=whole_number(receive.get("foodShareFeeChargeByPoi")),
        merchant_income=merchant_income(payload, receive),
    )


@dataclass(frozen=True)
class LineRead:
    """A ``detail`` line as read: its item, and whether the line states the figure its
    ``price`` is not (``original_price`` under ``discounted``, ``actual_price`` under
    ``original``); a line that does not gets its share of the item discount."""

    item: PriceItem
    states_other: bool


def price_item(line: Mapping[str, Any], semantics: PriceSemantics) -> LineRead | None:
    """One ``detail`` line with the prices it states: ``original_price`` and
    ``actual_price`` where it has them (retail lines, §5: taken as stated), else ``price``
    for both; None for a line with no quantity."""
    quantity = whole_number(line.get("quantity"))
    if quantity is None or quantity < 1:
        return None
    price = yuan(line.get("price"))
    stated_original = _text(line.get("original_price"))
    actual = _text(line.get("actual_price"))
    app_food_code = _text(line.get("app_food_code")) or None
    sku_code = _text(line.get("sku_id")) or app_food_code
    item = PriceItem(
        sku_code=sku_code,
        platform_sku_id=app_food_code,
        name=_text(line.get("food_name")) or sku_code or "?",
        quantity=quantity,
        unit_original=yuan(stated_original) if stated_original else price,
        unit_paid=yuan(actual) if actual else price,
    )
    states_other = stated_original if semantics == "discounted" else actual
    return LineRead(item, states_other=bool(states_other))


def item_discount(
    payload: Mapping[str, Any], semantics: PriceSemantics, lines: list[LineRead], fees: int
) -> int:
    """What item activities took off the lines that do not state their other figure, in fen.

    Under ``discounted`` it is what the order's ``original_price`` (优惠前总价, [C]) has
    above the lines' amounts, boxes and shipping: the lines are at discounted prices there.
    Under ``original`` the lines are at list prices, so it is the ``reduce_fee`` of the
    ``extras`` that are item activities (assumptions.ITEM_ACTIVITY_TYPES, [G]) less what
    the lines stating ``actual_price`` already account for.
    """
    stated = sum(
        (line.item.unit_original - line.item.unit_paid) * line.item.quantity
        for line in lines
        if line.states_other
    )
    if semantics == "discounted":
        original = _text(payload.get("original_price"))
        if not original:
            return 0
        at_list = sum(line.item.unit_original * line.item.quantity for line in lines)
        return max(0, yuan(original) - at_list - fees)
    activities = sum(
        yuan(entry.get("reduce_fee"))
        for entry in _entries(payload.get("extras"))
        if _text(entry.get("type")) in facts.ITEM_ACTIVITY_TYPES
    )
    return max(0, activities - stated)


def spread(lines: list[LineRead], discount: int, semantics: PriceSemantics) -> list[PriceItem]:
    """The items, ``discount`` spread over the lines that do not state their other figure,
    in proportion to their amounts at ``price`` (largest remainder), as a per-unit amount
    rounded to the fen: added to ``unit_original`` under ``discounted``, taken off
    ``unit_paid`` under ``original``."""
    figure, sign = ("unit_original", 1) if semantics == "discounted" else ("unit_paid", -1)
    open_lines = [index for index, line in enumerate(lines) if not line.states_other]
    items = [line.item for line in lines]
    amounts = [getattr(items[index], figure) * items[index].quantity for index in open_lines]
    for index, share in zip(open_lines, _shares(discount, amounts), strict=True):
        item = items[index]
        per_unit, rest = divmod(share, item.quantity)
        if 2 * rest >= item.quantity:  # to the nearest fen, half up
            per_unit += 1
        adjusted = max(0, getattr(item, figure) + sign * per_unit)
        items[index] = item.model_copy(update={figure: adjusted})
    return items


def _shares(total: int, amounts: list[int]) -> list[int]:
    """``total`` split in proportion to ``amounts``, in whole fen adding up to ``total``."""
    whole = sum(amounts)
    if total <= 0 or whole <= 0:
        return [0] * len(amounts)
    shares = [total * amount // whole for amount in amounts]
    by_remainder = sorted(
        range(len(amounts)), key=lambda index: total * amounts[index] % whole, reverse=True
    )
    for index in by_remainder[: total - sum(shares)]:
        shares[index] += 1
    return shares


def box_fee(line: Mapping[str, Any]) -> int:
    """A line's packaging: ``box_num × box_price`` (assumptions.BOX_FEE_PER_LINE)."""
    boxes = _text(line.get("box_num"))
    price = _text(line.get("box_price"))
    if not boxes or not price:
        return 0
    try:
        per_line = yuan_to_fen(Decimal(boxes) * Decimal(price))
    except (ArithmeticError, ValueError):  # not numbers, or too large to be money
        raise ValueError("box_num × box_price is not an amount in yuan") from None
    if facts.BOX_FEE_PER_LINE:
        return per_line
    return per_line * (whole_number(line.get("quantity")) or 1)


def discounts(payload: Mapping[str, Any]) -> tuple[int, int]:
    """``(merchant_discount, platform_discount)`` from ``extras``: ``poi_charge`` and
    ``mt_charge``; a ``reduce_fee`` stated without its split is split as
    ``poi_receive_detail`` says, else counted as the merchant's (assumptions)."""
    merchant = platform = unsplit = 0
    for entry in _entries(payload.get("extras")):
        poi, mt = _text(entry.get("poi_charge")), _text(entry.get("mt_charge"))
        if poi or mt:
            merchant += yuan(poi) if poi else 0
            platform += yuan(mt) if mt else 0
        else:
            unsplit += yuan(entry.get("reduce_fee"))
    if unsplit:
        receive = payload.get("poi_receive_detail")
        if isinstance(receive, dict) and (
            "actOrderChargeByPoi" in receive or "actOrderChargeByMt" in receive
        ):
            return _charges(receive.get("actOrderChargeByPoi")), _charges(
                receive.get("actOrderChargeByMt")
            )
        if facts.UNSPLIT_DISCOUNT_IS_MERCHANTS:
            merchant += unsplit
        else:
            platform += unsplit
    return merchant, platform


def merchant_income(payload: Mapping[str, Any], receive: Mapping[str, Any]) -> int | None:
    """商家应收款 as stated: ``wmPoiReceiveCent``, else ``poi_receive_detail_yuan.poiReceive``,
    else None (the app is not subscribed)."""
    cents = whole_number(receive.get("wmPoiReceiveCent"))
    if cents is not None:
        return cents
    in_yuan = payload.get("poi_receive_detail_yuan")
    if isinstance(in_yuan, dict) and _text(in_yuan.get("poiReceive")):
        return yuan(in_yuan.get("poiReceive"))
    return None


def yuan(value: object) -> int:
    """An amount Meituan states in yuan, in fen; missing or empty is 0."""
    text = _text(value)
    return yuan_to_fen(text) if text else 0


def _fen_or_zero(value: object) -> int:
    number = whole_number(value)
    return number if number is not None and number > 0 else 0


def _entries(extras: object) -> list[dict[str, Any]]:
    """The ``extras`` entries that are objects (``[{}]`` occurs, §3.4)."""
    if not isinstance(extras, list):
        return []
    return [entry for entry in extras if isinstance(entry, dict)]


def _charges(entries: object) -> int:
    if not isinstance(entries, list):
        return 0
    return sum(_fen_or_zero(entry.get("moneyCent")) for entry in entries if isinstance(entry, dict))


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()

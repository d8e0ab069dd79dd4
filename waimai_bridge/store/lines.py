"""An order's lines from its price breakdown, each mapped to the chain's product (SPEC §6).

An unmapped line is stored all the same, flagged, with an ``unmapped_sku`` anomaly of its
order (seed 000 §五: the mapping is the main operational risk); a breakdown whose stated
total disagrees with its lines gets a ``total_mismatch`` anomaly.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.orm import Session

from waimai_bridge.models import PriceBreakdown
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store.anomalies import Opening, open_anomalies
from waimai_bridge.store.order_log import Locked
from waimai_bridge.store.skus import product_ids
from waimai_bridge.store.tables import OrderItem
from waimai_bridge.store.upsert import insert_ignoring_conflict


def opening(platform_order: Locked, order_id: int | None, rule: str, detail: str) -> Opening:
    """An anomaly of a locked platform order."""
    return Opening(
        platform_order.id, order_id, platform_order.platform, platform_order.platform_order_id,
        platform_order.store_id, rule, detail,
    )  # fmt: skip


def total_mismatch(price: PriceBreakdown) -> str | None:
    """What is wrong when the stated total disagrees with the lines (Σ unit_original ×
    quantity + packaging + delivery ≠ original_amount), else None."""
    lines = sum(item.unit_original * item.quantity for item in price.items)
    expected = lines + price.packaging_fee + price.delivery_fee
    if expected == price.original_amount:
        return None
    return (
        f"original_amount {price.original_amount} fen, but the lines ({lines}) with packaging "
        f"({price.packaging_fee}) and delivery ({price.delivery_fee}) make {expected} fen"
    )


def store_lines(session: Session, stored: Sequence[tuple[Locked, int | None]], now_ms: int) -> None:
    """The lines of the orders (platform order, stored order id) from their price
    breakdowns, each mapped to the chain's product; an unmapped line is flagged and noted as
    an anomaly of its order."""
    priced: list[tuple[Locked, int | None, PriceBreakdown]] = []
    anomalies: list[Opening] = []
    for platform_order, order_id in stored:
        if platform_order.price is None:
            continue
        try:
            priced.append(
                (platform_order, order_id, PriceBreakdown.model_validate(platform_order.price))
            )
        except ValidationError as exc:  # kept before the contract bounded it: no lines
            detail = f"its lines cannot be stored: {exc}"
            anomalies.append(
                opening(platform_order, order_id, AnomalyRule.PRICE_UNREADABLE, detail)
            )
    codes: dict[str, set[str]] = {}
    for platform_order, _, price in priced:
        codes.setdefault(platform_order.platform, set()).update(
            i.sku_code for i in price.items if i.sku_code
        )
    known = {platform: product_ids(session, platform, wanted) for platform, wanted in codes.items()}
    items = []
    for platform_order, order_id, price in priced:
        if (mismatch := total_mismatch(price)) is not None:
            anomalies.append(
                opening(platform_order, order_id, AnomalyRule.TOTAL_MISMATCH, mismatch)
            )
        for line, item in enumerate(price.items, start=1):
            product_id = (
                known[platform_order.platform].get(item.sku_code) if item.sku_code else None
            )
            items.append(
                {
                    "order_id": order_id,
                    "line": line,
                    "sku_code": item.sku_code,
                    "platform_sku_id": item.platform_sku_id,
                    "name": item.name,
                    "quantity": item.quantity,
                    "unit_original_fen": item.unit_original,
                    "unit_paid_fen": item.unit_paid,
                    "product_id": product_id,
                    "unmapped": product_id is None,
                }
            )
            if product_id is None:
                code = f"SKU code {item.sku_code!r}" if item.sku_code else "no SKU code"
                detail = f"line {line} ({item.name}): {code} maps to no product"
                anomalies.append(
                    opening(platform_order, order_id, AnomalyRule.UNMAPPED_SKU, detail)
                )
    insert_ignoring_conflict(session, OrderItem, items)
    open_anomalies(session, anomalies, now_ms)

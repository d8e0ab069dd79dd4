"""Realistic Eleme ``message`` bodies, for tests, fixtures and the demo.

The shapes follow platforms.md §1.6–1.9 and the real payloads cited there; the values are
made up. Money is given in fen and written as Eleme writes it: yuan, as JSON numbers, with
the discounts and the service fee negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Line:
    """An order line: a dish with the merchant's SKU code (``extendCode``)."""

    name: str
    extend_code: str
    sku_id: int
    price_fen: int
    quantity: int = 1
    user_price_fen: int = 0


DEFAULT_LINES = (
    Line("宫保鸡丁-大份[微辣]", "SKU-1001", 200000203668448543, 2800),
    Line("可乐-330ml", "SKU-2002-330", 200000203668448999, 500, quantity=2),
)


def yuan(fen: int) -> float:
    """Fen as Eleme's yuan number."""
    return fen / 100


def new_order(
    order_id: str,
    shop_id: int,
    *,
    lines: Sequence[Line] = DEFAULT_LINES,
    deliver_fee_fen: int = 500,
    package_fee_fen: int = 200,
    shop_part_fen: int = 800,
    eleme_part_fen: int = 200,
    service_rate: float = 0.15,
    active_at: str = "2024-05-20T11:58:10",
) -> dict[str, Any]:
    """A type-10 OOrder message whose totals add up the way Eleme's do."""
    goods = sum(line.price_fen * line.quantity for line in lines)
    discount = shop_part_fen + eleme_part_fen
    service_fee = round((goods - shop_part_fen) * service_rate)
    income = goods + package_fee_fen - shop_part_fen - service_fee
    return {
        "id": order_id,
        "orderId": order_id,
        "address": "上海市普陀区金沙江路1518弄 近铁城市广场北座5楼",
        "createdAt": active_at,
        "activeAt": active_at,
        "deliverFee": yuan(deliver_fee_fen),
        "vipDeliveryFeeDiscount": 0.0,
        "deliverTime": None,
        "description": "少放辣",
        "groups": [
            {"name": "1号篮子", "type": "normal", "items": [_item(line) for line in lines]},
            {
                "name": "其它费用",
                "type": "extra",
                "items": [
                    {
                        "id": -70000,
                        "skuId": -1,
                        "name": "餐盒",
                        "categoryId": 102,
                        "price": yuan(package_fee_fen),
                        "quantity": 1,
                        "total": yuan(package_fee_fen),
                        "additions": [],
                        "newSpecs": None,
                        "attributes": None,
                        "extendCode": "",
                        "barCode": "",
                        "weight": None,
                        "userPrice": 0.0,
                        "shopPrice": 0.0,
                        "vfoodId": 0,
                    }
                ],
            },
        ],
        "invoice": None,
        "book": False,
        "onlinePaid": True,
        "phoneList": ["13456789012"],
        "shopId": shop_id,
        "shopName": "示例小馆",
        "daySn": 12,
        "status": "unprocessed",
        "refundStatus": "noRefund",
        "userId": 263377385,
        "totalPrice": yuan(goods + package_fee_fen + deliver_fee_fen - discount),
        "originalPrice": yuan(goods + package_fee_fen + deliver_fee_fen),
        "consignee": "王(先生)",
        "deliveryGeo": "121.39281,31.23237",
        "invoiced": False,
        "income": yuan(income),
        "serviceRate": service_rate,
        "serviceFee": -yuan(service_fee),
        "hongbao": 0.0,
        "packageFee": yuan(package_fee_fen),
        "activityTotal": -yuan(discount),
        "shopPart": -yuan(shop_part_fen),
        "elemePart": -yuan(eleme_part_fen),
        "downgraded": False,
        "openId": "STORE-001",
        "orderActivities": [],
        "coldBoxFee": 0.0,
    }


def status(order_id: str, shop_id: int, state: str, update_time_s: int) -> dict[str, Any]:
    """A status-change message (types 12, 14, 15, 17, 18): ``state`` is an OOrderStatus."""
    return {
        "orderId": order_id, "state": state, "shopId": shop_id,
        "updateTime": update_time_s, "role": 3,
    }  # fmt: skip


def refund(
    order_id: str,
    shop_id: int,
    refund_status: str,
    update_time_s: int,
    *,
    partial_lines: Sequence[tuple[str, int, int]] = (),
    total_fen: int | None = None,
    reason: str = "用户申请",
) -> dict[str, Any]:
    """A cancel/refund message (types 20–26, 30–36). ``partial_lines`` (name, quantity,
    unit price in fen) make it a partial one whose ``totalPrice`` is their sum."""
    partial = bool(partial_lines)
    amount = sum(q * p for _, q, p in partial_lines) if total_fen is None else total_fen
    return {
        "orderId": order_id,
        "refundStatus": refund_status,
        "reason": reason,
        "shopId": shop_id,
        "goodsList": [
            {"name": name, "quantity": quantity, "price": yuan(price)}
            for name, quantity, price in partial_lines
        ],
        "refundType": "part" if partial else "normal",
        "totalPrice": yuan(amount),
        "updateTime": update_time_s,
    }


def delivery(order_id: str, shop_id: int, state: str, update_at_ms: int) -> dict[str, Any]:
    """A delivery message (types 51–76): ``state`` is an OState."""
    return {
        "orderId": order_id, "shopId": shop_id, "state": state, "subState": "noSubstate",
        "name": "李四", "phone": "13900001111", "updateAt": update_at_ms, "remark": None,
    }  # fmt: skip


def _item(line: Line) -> dict[str, Any]:
    return {
        "id": 1398894994,
        "skuId": line.sku_id,
        "name": line.name,
        "categoryId": 1,
        "price": yuan(line.price_fen),
        "quantity": line.quantity,
        "total": yuan(line.price_fen * line.quantity),
        "additions": [],
        "newSpecs": [],
        "attributes": [],
        "extendCode": line.extend_code,
        "barCode": "",
        "weight": 1.0,
        "userPrice": yuan(line.user_price_fen),
        "shopPrice": yuan(line.user_price_fen),
        "vfoodId": 1373286253,
    }

"""Realistic Meituan push parameters, for tests, fixtures and the demo.

The shapes follow platforms.md §3 and the research's samples; the values are made up. Each
builder returns the parameters of one push with their *true* values (lists and objects as
Python values); :func:`~waimai_bridge_meituan.testing.signed_push` turns them into the form
body Meituan sends. The defaults reproduce the research's sample order
(:data:`ORDER_ID`, store ``STORE-001``); :func:`priced_order` builds an order whose money
adds up the way Meituan's does from a list of :class:`Dish` lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

ORDER_ID: Final = "27061900338318741"
T_PAID: Final = 1_716_177_490
"""``utime`` of the sample order, epoch seconds."""

DETAIL: Final[list[dict[str, Any]]] = [
    {"app_food_code": "SKU-1001", "box_num": 1, "box_price": 1.0, "cart_id": 0,
     "food_discount": 1, "food_name": "宫保鸡丁", "food_property": "微辣", "price": 28.0,
     "quantity": 1, "sku_id": "SKU-1001-L", "spec": "大份", "unit": "份"},
    {"app_food_code": "SKU-2002", "box_num": 0, "box_price": 0, "cart_id": 0,
     "food_discount": 1, "food_name": "可乐", "food_property": "", "price": 5.0,
     "quantity": 2, "sku_id": "SKU-2002-330", "spec": "330ml", "unit": "罐"},
]  # fmt: skip
"""The sample order's ``detail`` lines."""

EXTRAS: Final[list[dict[str, Any]]] = [
    {"act_detail_id": 1234567890, "mt_charge": 2.0, "poi_charge": 8.0, "reduce_fee": 10.0,
     "remark": "满30元减10元", "type": 2},
]  # fmt: skip
"""The sample order's discounts: 10 yuan off, 8 paid by the merchant and 2 by Meituan."""

RECEIVE: Final[dict[str, Any]] = {
    "actOrderChargeByMt": [{"comment": "满30元减10元", "feeTypeDesc": "活动款",
                            "feeTypeId": 10019, "moneyCent": 200}],
    "actOrderChargeByPoi": [{"comment": "满30元减10元", "feeTypeDesc": "活动款",
                             "feeTypeId": 10019, "moneyCent": 800}],
    "foodShareFeeChargeByPoi": 465, "logisticsFee": 500, "onlinePayment": 3400,
    "wmPoiReceiveCent": 2635, "reconciliationExtras": '{"chargeMode":1}',
}  # fmt: skip
"""The sample order's ``poi_receive_detail``: what the merchant receives, in fen."""

PARTIAL_FOOD: Final[list[dict[str, Any]]] = [
    {"app_food_code": "SKU-2002", "box_num": 0, "box_price": 0, "count": 1, "food_name": "可乐",
     "food_price": 5.0, "origin_food_price": 5.0, "refund_price": 5.0, "sku_id": "SKU-2002-330",
     "spec": "330ml"},
]  # fmt: skip
"""The refunded lines of the sample partial refund: one can of cola, 5 yuan."""


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def yuan(fen: int) -> str:
    """Fen as the yuan text Meituan sends (``"34.0"``, ``"12.5"``)."""
    return str(fen / 100)


def order(status: int = 2, utime: int | None = T_PAID, **changes: Any) -> dict[str, Any]:
    """The parameters of an order push (``order_paid`` status 2, ``order_confirmed`` 4,
    ``order_completed`` 8); ``changes`` replace keys, and a None value drops one."""
    params: dict[str, Any] = {
        "order_id": ORDER_ID, "wm_order_id_view": ORDER_ID, "app_poi_code": "STORE-001",
        "wm_poi_name": "示例小馆(金沙江路店)", "wm_poi_address": "上海市普陀区金沙江路1500号",
        "wm_poi_phone": "021-62000000",
        "recipient_address": "近铁城市广场北座 (5楼前台)@#上海市普陀区金沙江路1518弄",
        "recipient_phone": "18400001234_5678", "backup_recipient_phone": ["18400001234_6789"],
        "recipient_name": "王(先生)", "shipping_fee": "5.0", "total": "34.0",
        "original_price": "44.0",
        "caution": "少放辣 收餐人隐私号 18400001234_5678，手机号 184****1234",
        "shipper_phone": "", "status": str(status), "city_id": "310100", "has_invoiced": "0",
        "invoice_title": "", "taxpayer_id": "", "ctime": str(T_PAID - 7),
        "utime": None if utime is None else str(utime),
        "delivery_time": "0", "is_third_shipping": "0", "pay_type": "2", "pick_type": "0",
        "day_seq": "12", "logistics_code": "1001", "poi_receive_detail": RECEIVE,
        "detail": DETAIL, "extras": EXTRAS, "avg_send_time": "1800.0",
        "package_bag_money": "0", "order_tag_list": [], "incmp_code": "0", "incmp_modules": [],
    }  # fmt: skip
    params.update(changes)
    return _present(params)


@dataclass(frozen=True)
class Dish:
    """A ``detail`` line: the merchant's ``app_food_code`` and ``sku_id`` (the SKU code the
    bridge maps), and prices in fen."""

    name: str
    app_food_code: str
    sku_id: str
    price_fen: int
    quantity: int = 1
    box_price_fen: int = 0
    spec: str = ""

    def line(self) -> dict[str, Any]:
        """The ``detail`` line of this dish."""
        return {
            "app_food_code": self.app_food_code, "box_num": 1 if self.box_price_fen else 0,
            "box_price": self.box_price_fen / 100, "cart_id": 0, "food_discount": 1,
            "food_name": self.name, "food_property": "", "price": self.price_fen / 100,
            "quantity": self.quantity, "sku_id": self.sku_id, "spec": self.spec, "unit": "份",
        }  # fmt: skip

    def refunded(self, count: int = 1) -> dict[str, Any]:
        """A ``food`` line of a partial refund of ``count`` of this dish."""
        return {
            "app_food_code": self.app_food_code, "box_num": 0, "box_price": 0, "count": count,
            "food_name": self.name, "food_price": self.price_fen / 100,
            "origin_food_price": self.price_fen / 100, "refund_price": self.price_fen / 100,
            "sku_id": self.sku_id, "spec": self.spec,
        }  # fmt: skip


@dataclass(frozen=True)
class Money:
    """What a :func:`priced_order` adds up to, in fen."""

    goods: int
    packaging: int
    shipping: int
    merchant_discount: int
    platform_discount: int
    commission: int

    @property
    def original(self) -> int:
        """Before any discount: goods, boxes and shipping."""
        return self.goods + self.packaging + self.shipping

    @property
    def user_paid(self) -> int:
        """``total``: what the user paid."""
        return self.original - self.merchant_discount - self.platform_discount

    @property
    def merchant_income(self) -> int:
        """``wmPoiReceiveCent``: goods and boxes, less the merchant's discount and commission."""
        return self.goods + self.packaging - self.merchant_discount - self.commission


def money(
    dishes: Sequence[Dish],
    *,
    shipping_fen: int = 500,
    merchant_discount_fen: int = 0,
    platform_discount_fen: int = 0,
    commission_rate: float = 0.12,
) -> Money:
    """The money of an order of ``dishes``; the commission is charged on what the merchant
    sells after its own discount."""
    goods = sum(dish.price_fen * dish.quantity for dish in dishes)
    packaging = sum(dish.box_price_fen * dish.quantity for dish in dishes)
    commission = round((goods + packaging - merchant_discount_fen) * commission_rate)
    return Money(
        goods, packaging, shipping_fen, merchant_discount_fen, platform_discount_fen, commission
    )


def priced_order(
    order_id: str,
    app_poi_code: str,
    dishes: Sequence[Dish],
    *,
    status: int = 2,
    ctime: int,
    utime: int | None = None,
    sums: Money | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """An order push for ``dishes`` at store ``app_poi_code`` whose totals, discounts and
    receive detail agree (``sums`` defaults to :func:`money` of the dishes)."""
    sums = sums or money(dishes)
    discount = sums.merchant_discount + sums.platform_discount
    extras = (
        [{"act_detail_id": 1234567890, "mt_charge": sums.platform_discount / 100,
          "poi_charge": sums.merchant_discount / 100, "reduce_fee": discount / 100,
          "remark": f"满减{discount // 100}元", "type": 2}]
        if discount else []
    )  # fmt: skip
    receive = {
        "actOrderChargeByMt": [{"comment": "满减", "feeTypeDesc": "活动款", "feeTypeId": 10019,
                                "moneyCent": sums.platform_discount}],
        "actOrderChargeByPoi": [{"comment": "满减", "feeTypeDesc": "活动款", "feeTypeId": 10019,
                                 "moneyCent": sums.merchant_discount}],
        "foodShareFeeChargeByPoi": sums.commission, "logisticsFee": sums.shipping,
        "onlinePayment": sums.user_paid, "wmPoiReceiveCent": sums.merchant_income,
        "reconciliationExtras": '{"chargeMode":1}',
    }  # fmt: skip
    return order(
        status,
        utime if utime is not None else ctime,
        order_id=order_id,
        wm_order_id_view=order_id,
        app_poi_code=app_poi_code,
        ctime=str(ctime),
        detail=[dish.line() for dish in dishes],
        extras=extras,
        poi_receive_detail=receive,
        total=yuan(sums.user_paid),
        original_price=yuan(sums.original),
        shipping_fee=yuan(sums.shipping),
        **changes,
    )


def refund(notify_type: str, refund_id: str = "68012345678", **changes: Any) -> dict[str, Any]:
    """The parameters of a full refund push (``notify_type`` apply, agree, reject,
    cancelRefund …); ``ctime`` is the refund's creation time, the same for all its pushes."""
    params: dict[str, Any] = {
        "order_id": ORDER_ID, "notify_type": notify_type, "refund_id": refund_id,
        "ctime": str(T_PAID + 3600), "reason": "不想要了", "res_type": "0", "is_appeal": "0",
        "pictures": "",
    }  # fmt: skip
    params.update(changes)
    return _present(params)


def partial(notify_type: str, refund_id: str = "68012345679", **changes: Any) -> dict[str, Any]:
    """The parameters of a partial refund push (by default one can of cola, 5 yuan)."""
    return refund(notify_type, refund_id, **{"food": PARTIAL_FOOD, "money": "5.0", **changes})


def logistics(status: int, at: int, *, order_id: str = ORDER_ID) -> dict[str, Any]:
    """The parameters of a rider status push (``logistics_status`` 10 / 15 / 20 / 40 …) at
    ``at`` epoch seconds."""
    return {
        "order_id": order_id, "wm_order_id_view": order_id, "logistics_status": str(status),
        "time": str(at), "dispatcher_name": "李四", "dispatcher_mobile": "13900001111_4321",
    }  # fmt: skip


def cancel(
    reason_code: str, *, order_id: str = ORDER_ID, reason: str = "用户取消"
) -> dict[str, Any]:
    """The parameters of a cancel push (no time field: the system timestamp dates it)."""
    return {"order_id": order_id, "reason_code": reason_code, "reason": reason,
            "deal_op_type": "1"}  # fmt: skip

"""Write the Meituan plugin's contract fixtures: ``waimai_bridge_meituan/fixtures/``.

One JSON file per push kind or notable variant (``push/``) and per action (``action/``), for
the contract-test harness. The requests are signed with :mod:`waimai_bridge_meituan.testing`
(``FIXTURE_SETTINGS``, ``FIXTURE_STORES``, public base URL ``https://bridge.example.com``);
every expected output below is written out by hand from platforms.md and SPEC §4.1/§6, never
copied from the plugin's answers. ``tests/test_meituan_fixtures.py`` checks the plugin
against them and that the files are what this script writes.

    python plugins/meituan/make_meituan_fixtures.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_PUBLIC_BASE_URL,
    FIXTURE_SECRET,
    signed_push,
)

HERE = Path(__file__).resolve().parent / "waimai_bridge_meituan" / "fixtures"
OID = "27061900338318741"
T = 1_716_177_490  # seconds
SENT = T + 5  # the system timestamp of every push below
ACK = {"status": 200, "body": '{"data":"ok"}'}

DETAIL = [
    {"app_food_code": "SKU-1001", "box_num": 1, "box_price": 1.0, "food_name": "宫保鸡丁",
     "food_property": "微辣", "price": 28.0, "quantity": 1, "sku_id": "SKU-1001-L",
     "spec": "大份", "unit": "份"},
    {"app_food_code": "SKU-2002", "box_num": 0, "box_price": 0, "food_name": "可乐",
     "food_property": "", "price": 5.0, "quantity": 2, "sku_id": "SKU-2002-330",
     "spec": "330ml", "unit": "罐"},
]  # fmt: skip
EXTRAS = [{"act_detail_id": 1234567890, "mt_charge": 2.0, "poi_charge": 8.0,
           "reduce_fee": 10.0, "remark": "满30元减10元", "type": 2}]  # fmt: skip
RECEIVE = {
    "actOrderChargeByMt": [{"comment": "满30元减10元", "feeTypeDesc": "活动款",
                            "feeTypeId": 10019, "moneyCent": 200}],
    "actOrderChargeByPoi": [{"comment": "满30元减10元", "feeTypeDesc": "活动款",
                             "feeTypeId": 10019, "moneyCent": 800}],
    "foodShareFeeChargeByPoi": 465, "logisticsFee": 500, "onlinePayment": 3400,
    "wmPoiReceiveCent": 2635, "reconciliationExtras": '{"chargeMode":1}',
}  # fmt: skip
FOOD = [{"app_food_code": "SKU-2002", "box_num": 0, "box_price": 0, "count": 1,
         "food_name": "可乐", "food_price": 5.0, "origin_food_price": 5.0, "refund_price": 5.0,
         "sku_id": "SKU-2002-330", "spec": "330ml"}]  # fmt: skip


def order(status: int, utime: int, **changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "order_id": OID, "wm_order_id_view": OID, "app_poi_code": "STORE-001",
        "wm_poi_name": "示例小馆(金沙江路店)", "wm_poi_address": "上海市普陀区金沙江路1500号",
        "recipient_address": "近铁城市广场北座 (5楼前台)@#上海市普陀区金沙江路1518弄",
        "recipient_phone": "18400001234_5678", "recipient_name": "王(先生)",
        "backup_recipient_phone": ["18400001234_6789"], "caution": "少放辣 100%+多加醋",
        "shipping_fee": "5.0", "total": "34.0", "original_price": "44.0", "status": str(status),
        "ctime": str(T - 7), "utime": str(utime), "pay_type": "2", "pick_type": "0",
        "day_seq": "12", "logistics_code": "1001", "poi_receive_detail": RECEIVE,
        "detail": DETAIL, "extras": EXTRAS, "package_bag_money": "0", "order_tag_list": [],
        "incmp_code": "0", "incmp_modules": [], "invoice_title": "",
    }  # fmt: skip
    params.update(changes)
    return {key: value for key, value in params.items() if value is not None}


def refund(notify_type: str, refund_id: str, **changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "order_id": OID, "notify_type": notify_type, "refund_id": refund_id,
        "ctime": str(T + 3600), "reason": "不想要了", "res_type": "0", "is_appeal": "0",
        "pictures": "",
    }  # fmt: skip
    params.update(changes)
    return {key: value for key, value in params.items() if value is not None}


def partial(notify_type: str, **changes: Any) -> dict[str, Any]:
    return refund(notify_type, "68012345679", **{"food": FOOD, "money": "5.0", **changes})


def rider(status: int) -> dict[str, Any]:
    return {"order_id": OID, "wm_order_id_view": OID, "logistics_status": str(status),
            "time": str(T + 600 + status), "dispatcher_name": "李四",
            "dispatcher_mobile": "13900001111_4321"}  # fmt: skip


# --------------------------------------------------------------------------- expectations


def change(
    state: int | None,
    *,
    partial: bool = False,
    amount: int | None = None,
    items: list[dict[str, Any]] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {"state": state, "kitchen_step": None, "partial": partial,
            "refund_amount_fen": amount, "refunded_items": items or [],
            "reason": reason}  # fmt: skip


def event(code: str, key: str, time_s: int, store: str = "S001") -> dict[str, Any]:
    return {"store_id": store, "platform_order_id": OID, "native_code": code,
            "idempotency_key": key, "platform_time_ms": time_s * 1000}  # fmt: skip


COLA = [{"name": "可乐", "quantity": 1, "sku_code": "SKU-2002-330",
         "platform_sku_id": "SKU-2002", "amount_fen": 500}]  # fmt: skip
PRICE = {
    "items": [
        {"sku_code": "SKU-1001-L", "platform_sku_id": "SKU-1001", "name": "宫保鸡丁",
         "quantity": 1, "unit_original": 2800, "unit_paid": 2800, "product_id": None},
        {"sku_code": "SKU-2002-330", "platform_sku_id": "SKU-2002", "name": "可乐",
         "quantity": 2, "unit_original": 500, "unit_paid": 500, "product_id": None},
    ],
    "original_amount": 4400, "packaging_fee": 100, "delivery_fee": 500,
    "merchant_discount": 800, "platform_discount": 200, "user_paid": 3400,
    "commission": 465, "merchant_income": 2635,
}  # fmt: skip
RETAIL_LINE = {"app_food_code": "SKU-3003", "sku_id": "", "food_name": "薯片", "price": 12.0,
               "actual_price": 9.5, "quantity": 1, "box_num": 0, "box_price": 0}  # fmt: skip
ORIGINAL_PRICE = {
    "items": [
        {"sku_code": "SKU-1001-L", "platform_sku_id": "SKU-1001", "name": "宫保鸡丁",
         "quantity": 1, "unit_original": 2800, "unit_paid": 2800, "product_id": None},
        {"sku_code": "SKU-3003", "platform_sku_id": "SKU-3003", "name": "薯片",
         "quantity": 1, "unit_original": 1200, "unit_paid": 950, "product_id": None},
    ],
    "original_amount": 4600, "packaging_fee": 100, "delivery_fee": 500,
    "merchant_discount": 800, "platform_discount": 200, "user_paid": 3350,
    "commission": 465, "merchant_income": 2635,
}  # fmt: skip


def refusal(status: int, code: int, msg: str) -> dict[str, Any]:
    body = json.dumps({"data": "ng", "error": {"code": code, "msg": msg}}, ensure_ascii=False,
                      separators=(",", ":"))  # fmt: skip
    return {"status": status, "body": body}


def hashed(code: str, params: dict[str, str]) -> str:
    """The key of a kind without identity fields: sha256 of the sorted parameters
    without ``timestamp`` and ``sig`` (README, "Idempotency")."""
    pairs = sorted((key, value) for key, value in params.items() if key not in ("timestamp",))
    text = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return f"{code}:{OID}:{hashlib.sha256(text.encode()).hexdigest()}"


# --------------------------------------------------------------------------- building


def push_fixture(
    description: str,
    kind: str,
    params: dict[str, Any],
    *,
    reply: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    states: list[dict[str, Any]] | None = None,
    price: dict[str, Any] | None = None,
    method: str = "POST",
    sign: dict[str, Any] | None = None,
    tamper: tuple[str, str] | None = None,
    raw: str | None = None,
) -> dict[str, Any]:
    options: dict[str, Any] = {"secret": FIXTURE_SECRET, "app_id": FIXTURE_APP_ID,
                               "timestamp": SENT, **(sign or {})}  # fmt: skip
    text = signed_push(kind, params, **options).decode() if params else ""
    if tamper is not None:
        key, value = tamper
        text = "&".join(
            f"{key}={value}" if part.startswith(f"{key}=") else part for part in text.split("&")
        )
    if raw is not None:
        text = raw
    query: list[list[str]] = []
    body = text
    if method == "GET":
        query = [[key, value] for key, value in parse_qsl(text, keep_blank_values=True)]
        body = ""
    headers = {"content-type": "application/x-www-form-urlencoded"} if method == "POST" else {}
    return {
        "description": description,
        "request": {"method": method, "kind": kind, "query": query, "headers": headers,
                    "body": body},
        "expect": {"reply": reply or ACK, "events": events or [], "states": states or [],
                   "price": price},
    }  # fmt: skip


def push_fixtures() -> dict[str, dict[str, Any]]:
    """Every push fixture by file name."""
    paid_key = f"order_paid:{OID}"
    fixtures: dict[str, dict[str, Any]] = {
        "order_paid": push_fixture(
            "推送已支付订单 (status 2) by form POST, double-encoded fields, 商家应收款 subscribed",
            "order_paid", order(2, T),
            events=[event("order_paid", paid_key, T)], states=[change(10)], price=PRICE,
        ),
        "order_paid_get": push_fixture(
            "the same paid-order push as a GET query (§3.1: both are seen)",
            "order_paid", order(2, T), method="GET",
            events=[event("order_paid", paid_key, T)], states=[change(10)], price=PRICE,
        ),
        "order_paid_without_receive_detail": push_fixture(
            "an app not subscribed to 商家应收款详情: commission and merchant income are null",
            "order_paid", order(2, T, poi_receive_detail=None),
            events=[event("order_paid", paid_key, T)], states=[change(10)],
            price={**PRICE, "commission": None, "merchant_income": None},
        ),
        "order_paid_original_price_store": push_fixture(
            "store S002 overrides price_semantics to 'original'; a retail line states "
            "actual_price",
            "order_paid",
            order(2, T, app_poi_code="STORE-002", detail=[DETAIL[0], RETAIL_LINE],
                  total="33.5", original_price="46.0"),
            events=[event("order_paid", paid_key, T, "S002")], states=[change(10)],
            price=ORIGINAL_PRICE,
        ),
        "order_confirmed": push_fixture(
            "推送已确认订单 (status 4)", "order_confirmed", order(4, T + 60),
            events=[event("order_confirmed", f"order_confirmed:{OID}", T + 60)],
            states=[change(12)], price=PRICE,
        ),
        "order_completed": push_fixture(
            "推送已完成订单 (status 8)", "order_completed", order(8, T + 1800),
            events=[event("order_completed", f"order_completed:{OID}", T + 1800)],
            states=[change(18)], price=PRICE,
        ),
        "order_cancelled_before_acceptance": push_fixture(
            "推送用户或客服取消订单, reason_code 1102 (商家确认前取消): 14 cancelled",
            "order_cancelled",
            {"order_id": OID, "reason_code": "1102", "reason": "用户取消，商家确认前取消",
             "deal_op_type": "1"},
            events=[event("order_cancelled", f"order_cancelled:{OID}", SENT)],
            states=[change(14, reason="1102 用户取消，商家确认前取消")],
        ),
        "order_cancelled_after_acceptance": push_fixture(
            "a cancel with reason_code 2009 (商品已售完, by the merchant): 17 force_invalidated",
            "order_cancelled",
            {"order_id": OID, "reason_code": "2009", "reason": "商品已售完", "deal_op_type": "2"},
            events=[event("order_cancelled", f"order_cancelled:{OID}", SENT)],
            states=[change(17, reason="2009 商品已售完")],
        ),
    }  # fmt: skip
    for notify_type, state, res_type in (
        ("apply", 30, "0"), ("agree", 33, "2"), ("reject", 32, "1"),
        ("cancelRefund", 31, "7"), ("cancelRefundComplaint", 31, "8"),
    ):  # fmt: skip
        code = f"refund.{notify_type}"
        fixtures[f"refund_{notify_type}"] = push_fixture(
            f"推送全额退款信息, notify_type {notify_type}",
            "refund",
            refund(notify_type, "68012345678", res_type=res_type),
            events=[event(code, f"{code}:{OID}:68012345678", T + 3600)],
            states=[change(state, reason="不想要了")],
        )
    for notify_type, state in (("part", 30), ("agree", 33), ("reject", 32), ("cancelRefund", 31)):
        code = f"partial_refund.{notify_type}"
        fixtures[f"partial_refund_{notify_type}"] = push_fixture(
            f"推送部分退款信息, notify_type {notify_type}: one can of cola, money 5.0 yuan",
            "partial_refund",
            partial(notify_type),
            events=[event(code, f"{code}:{OID}:68012345679", T + 3600)],
            states=[change(state, partial=True, amount=500, items=COLA, reason="不想要了")],
        )
    fixtures["partial_refund_unknown_notify_type"] = push_fixture(
        "a partial refund with a notify_type the research does not know, read from res_type 2",
        "partial_refund",
        partial("finished", res_type="2"),
        events=[event("partial_refund.agree", f"partial_refund.agree:{OID}:68012345679", T + 3600)],
        states=[change(33, partial=True, amount=500, items=COLA, reason="不想要了")],
    )
    for status, rider_state in (
        (0, None),
        (5, None),
        (10, 53),
        (15, 54),
        (20, 55),
        (40, 56),
        (100, None),
    ):
        code = f"logistics.{status}"
        at = T + 600 + status
        fixtures[f"logistics_{status}"] = push_fixture(
            f"推送美配订单配送状态, logistics_status {status}; no app_poi_code: the first store",
            "logistics",
            rider(status),
            events=[event(code, f"{code}:{OID}:{at}", at)],
            states=[change(rider_state)],
        )
    status_params = {"order_id": OID, "refund_id": "68012345679", "refund_status": "13",
                     "money": "5.0", "ctime": str(T + 3600), "utime": str(T + 3700)}  # fmt: skip
    fixtures["refund_status"] = push_fixture(
        "推送退款状态, 13 部分退款成功: kept in the log only",
        "refund_status",
        status_params,
        events=[event("refund_status", f"refund_status:{OID}:68012345679:13", T + 3700)],
        states=[change(None)],
    )
    settle = {"order_id": OID, "settleAmount": "26.35", "app_poi_code": "STORE-001"}
    fixtures["settlement"] = push_fixture(
        "推送订单结算信息 [P]: no identity fields, keyed by a hash of its parameters",
        "settlement",
        settle,
        events=[event("settlement", hashed("settlement", {**settle, "app_id": FIXTURE_APP_ID}),
                      SENT)],
        states=[change(None)],
    )  # fmt: skip
    remind = {"order_id": OID, "remind_id": "9", "remind_time": str(T + 1200)}
    fixtures["reminder"] = push_fixture(
        "推送催单消息 [G fields]: keyed by a hash of its parameters",
        "reminder",
        remind,
        events=[event("reminder", hashed("reminder", {**remind, "app_id": FIXTURE_APP_ID}),
                      SENT)],
        states=[change(None)],
    )  # fmt: skip
    fixtures["probe_post"] = push_fixture("the console's URL check: an empty POST",
                                          "order_paid", {})  # fmt: skip
    fixtures["probe_get"] = push_fixture("the console's URL check: a GET without query",
                                         "refund", {}, method="GET")  # fmt: skip
    fixtures["refused_tampered"] = push_fixture(
        "a paid-order push whose total was changed after signing: 401",
        "order_paid", order(2, T), tamper=("total", "3.4"),
        reply=refusal(401, 703, "the sig does not match the order_paid push URL"),
    )  # fmt: skip
    fixtures["refused_wrong_app_id"] = push_fixture(
        "a push correctly signed but for another app_id: 401",
        "order_paid", order(2, T), sign={"app_id": "9999"},
        reply=refusal(401, 702, "the push is for another app_id"),
    )  # fmt: skip
    fixtures["refused_unknown_store"] = push_fixture(
        "a signed push for an app_poi_code no store is bound to: 400",
        "order_paid", order(2, T, app_poi_code="STORE-404"),
        reply=refusal(400, 704, "no store is bound to app_poi_code 'STORE-404'"),
    )  # fmt: skip
    fixtures["refused_other_url"] = push_fixture(
        "a push signed for another callback URL (another host): 401",
        "order_paid", order(2, T), sign={"public_base_url": "https://elsewhere.example.com"},
        reply=refusal(401, 703, "the sig does not match the order_paid push URL"),
    )  # fmt: skip
    fixtures["refused_undecodable"] = push_fixture(
        "a JSON body on a Meituan push URL: 400",
        "order_paid", {}, raw='{"order_id": "27061900338318741"}',
        reply=refusal(400, 705, "the body is not a form of Meituan parameters"),
    )  # fmt: skip
    return fixtures


def action_fixture(
    description: str, name: str, path: str, params: dict[str, str], reason: str | None = None
) -> dict[str, Any]:
    return {
        "description": description,
        "action": {"action_id": f"A-{name}", "action": name, "platform_order_id": OID,
                   "store_id": "S001", "reason": reason, "attempt": 1},
        "expect": {"method": "GET", "path": path, "params": {"order_id": OID, **params},
                   "result": {"outcome": "done", "code": None, "message": None}},
    }  # fmt: skip


def action_fixtures() -> dict[str, dict[str, Any]]:
    """Every action fixture by file name."""
    return {
        "confirm": action_fixture("accept the order", "confirm", "order/confirm", {}),
        "cancel": action_fixture(
            "merchant cancel; the reason maps to reason_code 2009 (商品已售完)", "cancel",
            "order/cancel", {"reason": "商品已售完", "reason_code": "2009"}, "商品已售完",
        ),
        "cancel_without_reason": action_fixture(
            "merchant cancel without a reason: 2007 其他原因", "cancel", "order/cancel",
            {"reason": "其他原因", "reason_code": "2007"},
        ),
        "agree_refund": action_fixture(
            "agree to a refund application", "agree_refund", "order/refund/agree",
            {"reason": "同意退款"},
        ),
        "agree_cancel": action_fixture(
            "agree to a cancel (Meituan: the same refund endpoint)", "agree_cancel",
            "order/refund/agree", {"reason": "可以"}, "可以",
        ),
        "reject_refund": action_fixture(
            "reject a refund application, with a reason", "reject_refund",
            "order/refund/reject", {"reason": "餐品已送达且完好"}, "餐品已送达且完好",
        ),
        "reject_cancel": action_fixture(
            "reject a cancel without a reason: the default one is sent", "reject_cancel",
            "order/refund/reject", {"reason": "商家拒绝退款"},
        ),
        "meal_ready": action_fixture(
            "出餐完成", "meal_ready", "order/preparationMealComplete", {},
        ),
    }  # fmt: skip


def build() -> dict[str, str]:
    """Every fixture file's path below ``fixtures/`` and its text."""
    files = {f"push/{name}.json": fixture for name, fixture in push_fixtures().items()}
    files |= {f"action/{name}.json": fixture for name, fixture in action_fixtures().items()}
    return {
        path: json.dumps(content, ensure_ascii=False, indent=2) + "\n"
        for path, content in files.items()
    }


def main() -> None:
    """Write the fixtures (and drop stale ones)."""
    wanted = build()
    for folder in ("push", "action"):
        for stale in (HERE / folder).glob("*.json"):
            if f"{folder}/{stale.name}" not in wanted:
                stale.unlink()
    for path, text in wanted.items():
        target = HERE / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} fixtures to {HERE} (public base URL {FIXTURE_PUBLIC_BASE_URL})")


if __name__ == "__main__":
    main()

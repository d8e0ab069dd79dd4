"""Write the Meituan plugin's contract fixtures: ``waimai_bridge_meituan/fixtures/``.

``config.json`` (the plugin config they are written for), one JSON file per push kind or
notable variant (``push/``), per action (``action/``), per API error (``errors/``: the fake's
scripted answer and its classification) and per order flow (``scenarios/``: pushes in
arrival order and the order state SPEC §5 folds them into), for the contract harness
(``waimai-bridge contract meituan --strictness high``). The requests are signed with
:mod:`waimai_bridge_meituan.testing` (``FIXTURE_SETTINGS``, ``FIXTURE_STORES``, public base
URL ``https://bridge.example.com``); every expected output below is written out by hand from
platforms.md and SPEC §4.1/§5/§6, never copied from the plugin's answers.
``tests/test_meituan_fixtures.py`` checks the plugin against them and that the files are
what this script writes.

    python plugins/meituan/make_meituan_fixtures.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from waimai_bridge_meituan.examples import DETAIL, EXTRAS, ORDER_ID, RECEIVE, T_PAID
from waimai_bridge_meituan.examples import PARTIAL_FOOD as FOOD
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_PUBLIC_BASE_URL,
    FIXTURE_SECRET,
    FIXTURE_SETTINGS,
    FIXTURE_STORES,
    signed_push,
)

HERE = Path(__file__).resolve().parent / "waimai_bridge_meituan" / "fixtures"
OID = ORDER_ID
T = T_PAID  # seconds
SENT = T + 5  # the system timestamp of every push below
ACK = {"status": 200, "body": '{"data":"ok"}'}


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
    """The key of a kind without identity fields: sha256 of the sorted non-empty
    parameters without ``timestamp`` and ``sig`` (README, "What identifies a message")."""
    pairs = sorted(
        (key, value) for key, value in params.items() if key != "timestamp" and value != ""
    )
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
    refused: str | None = None,
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
    expect: dict[str, Any] = {"reply": reply or ACK}
    if refused is not None:
        expect["refused"] = refused
    expect |= {"events": events or [], "states": states or [], "price": price}
    return {
        "description": description,
        "request": {"method": method, "kind": kind, "query": query, "headers": headers,
                    "body": body},
        "expect": expect,
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
    for notify_type, state, res_type in (
        ("part", 30, "0"), ("apply", 30, "0"), ("agree", 33, "0"), ("reject", 32, "0"),
        ("cancelRefund", 31, "0"), ("cancelRefundComplaint", 31, "8"),
    ):  # fmt: skip
        code = f"partial_refund.{notify_type}"
        fixtures[f"partial_refund_{notify_type}"] = push_fixture(
            f"推送部分退款信息, notify_type {notify_type}: one can of cola, money 5.0 yuan",
            "partial_refund",
            partial(notify_type, res_type=res_type),
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
        refused="BadSignature",
    )  # fmt: skip
    fixtures["refused_wrong_app_id"] = push_fixture(
        "a push correctly signed but for another app_id: 401",
        "order_paid", order(2, T), sign={"app_id": "9999"},
        reply=refusal(401, 702, "the push is for another app_id"),
        refused="BadSignature",
    )  # fmt: skip
    fixtures["refused_unknown_store"] = push_fixture(
        "a signed push for an app_poi_code no store is bound to: 400",
        "order_paid", order(2, T, app_poi_code="STORE-404"),
        reply=refusal(400, 704, "no store is bound to app_poi_code 'STORE-404'"),
        refused="UnknownStore",
    )  # fmt: skip
    fixtures["refused_other_url"] = push_fixture(
        "a push signed for another callback URL (another host): 401",
        "order_paid", order(2, T), sign={"public_base_url": "https://elsewhere.example.com"},
        reply=refusal(401, 703, "the sig does not match the order_paid push URL"),
        refused="BadSignature",
    )  # fmt: skip
    fixtures["refused_undecodable"] = push_fixture(
        "a JSON body on a Meituan push URL: 400",
        "order_paid", {}, raw='{"order_id": "27061900338318741"}',
        reply=refusal(400, 705, "the body is not a form of Meituan parameters"),
        refused="UndecodablePush",
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


# --------------------------------------------------------------------------- errors


def error_fixture(
    description: str,
    answer: dict[str, Any],
    result: dict[str, Any],
    *,
    action: str = "confirm",
    reason: str | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An error fixture: the action, the fake's scripted answer (the format of
    ``testing.HarnessFake``), settings overrides and the result it must give."""
    return {
        "description": description,
        "action": {"action_id": f"A-error-{action}", "action": action, "platform_order_id": OID,
                   "store_id": "S001", "reason": reason, "attempt": 1},
        "answer": answer,
        "settings": settings or {},
        "expect": {"result": result},
    }  # fmt: skip


def error_fixtures() -> dict[str, dict[str, Any]]:
    """Every error fixture by file name: §4.4's codes, HTTP failures and the network.

    700 and 711 are worth retrying (transient); every other Meituan code is final
    (rejected), its code and message kept. A 5xx or 429 without Meituan's body is
    transient; another 4xx is final (issue #6, README); a time-out or a broken connection
    once the request was sent is unknown (issue #28)."""
    return {
        "system_error_700": error_fixture(
            "700 系统错误: retried", {"error": {"code": 700, "msg": "系统错误"}},
            {"outcome": "transient", "code": "700", "message": "系统错误"},
        ),
        "rate_limited_711": error_fixture(
            "711 接口调用过于频繁 (流控): retried",
            {"error": {"code": 711, "msg": "接口调用过于频繁"}},
            {"outcome": "transient", "code": "711", "message": "接口调用过于频繁"},
        ),
        "bad_gateway_502": error_fixture(
            "a gateway's HTML 502 page, no Meituan body: retried", {"http": 502},
            {"outcome": "transient", "code": "http_502"},
        ),
        "unavailable_503": error_fixture(
            "a bare 503: retried", {"http": 503, "body": ""},
            {"outcome": "transient", "code": "http_503"},
        ),
        "too_many_requests_429": error_fixture(
            "HTTP 429 without Meituan's body: retried", {"http": 429, "body": "Too Many Requests"},
            {"outcome": "transient", "code": "http_429"},
        ),
        "time_out": error_fixture(
            "no answer within api_timeout_seconds (0.3 s) after the request was sent: "
            "unknown (it may have taken effect), settled by reading the order",
            {"slow": 1.5}, {"outcome": "unknown", "code": None},
            settings={"api_timeout_seconds": 0.3},
        ),
        "dropped": error_fixture(
            "the connection closed without an answer after the request was sent: unknown, "
            "settled by reading the order",
            {"drop": True}, {"outcome": "unknown", "code": None},
        ),
        "order_state_changed_808": error_fixture(
            "808 操作失败 (the order's state changed): final",
            {"error": {"code": 808, "msg": "操作失败,订单状态已变更"}},
            {"outcome": "rejected", "code": "808", "message": "操作失败,订单状态已变更"},
        ),
        "completed_order_1022": error_fixture(
            "cancel a completed order, 1022 该订单已完成无法取消: final",
            {"error": {"code": 1022, "msg": "该订单已完成无法取消"}},
            {"outcome": "rejected", "code": "1022", "message": "该订单已完成无法取消"},
            action="cancel", reason="商品已售完",
        ),
        "bad_sig_703": error_fixture(
            "703 签名验证错误 (a wrong secret): final, retrying cannot help",
            {"error": {"code": 703, "msg": "签名验证错误"}},
            {"outcome": "rejected", "code": "703", "message": "签名验证错误"},
        ),
        "no_such_order_806": error_fixture(
            "agree to a refund of an order Meituan does not know, 806 不存在此订单: final",
            {"error": {"code": 806, "msg": "不存在此订单"}},
            {"outcome": "rejected", "code": "806", "message": "不存在此订单"},
            action="agree_refund",
        ),
        "not_found_404": error_fixture(
            "HTTP 404 (a wrong api_base): final", {"http": 404, "body": "not found"},
            {"outcome": "rejected", "code": "http_404"},
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------- scenarios


class Steps:
    """The signed pushes of one scenario order, each at a time given in seconds after
    :data:`T` (``at``) and sent a few seconds later (the system ``timestamp``)."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id

    def _step(self, kind: str, params: dict[str, Any], sent: int) -> dict[str, Any]:
        fixture = push_fixture("", kind, params, sign={"timestamp": T + sent})
        return {"request": fixture["request"]}

    def order(self, status: int, at: int) -> dict[str, Any]:
        """推送已支付/已确认/已完成订单 (status 2/4/8), ``utime`` at ``at``."""
        kind = {2: "order_paid", 4: "order_confirmed", 8: "order_completed"}[status]
        params = order(status, T + at, order_id=self.order_id, wm_order_id_view=self.order_id)
        return self._step(kind, params, at + 2)

    def rider(self, status: int, at: int) -> dict[str, Any]:
        """推送美配订单配送状态 with ``time`` at ``at``."""
        params = {**rider(status), "order_id": self.order_id, "wm_order_id_view": self.order_id,
                  "time": str(T + at)}  # fmt: skip
        return self._step("logistics", params, at + 2)

    def refund(
        self, notify_type: str, refund_id: str, applied: int, sent: int, *, part: bool = False
    ) -> dict[str, Any]:
        """A full (``refund``) or partial (``partial_refund``: one can of cola, 5.0 yuan)
        refund push of the application ``refund_id`` made at ``applied``, sent at ``sent``:
        Meituan states only the application's ``ctime``."""
        res_type = {"apply": "0", "part": "0", "agree": "2", "reject": "1",
                    "cancelRefund": "7"}[notify_type]  # fmt: skip
        params = refund(notify_type, refund_id, order_id=self.order_id, ctime=str(T + applied),
                        res_type=res_type)  # fmt: skip
        if part:
            params |= {"food": FOOD, "money": "5.0"}
        return self._step("partial_refund" if part else "refund", params, sent)

    def cancelled(self, reason_code: str, reason: str, at: int) -> dict[str, Any]:
        """推送用户或客服取消订单: no time field, so the system ``timestamp`` (``at``)."""
        params = {"order_id": self.order_id, "reason_code": reason_code, "reason": reason,
                  "deal_op_type": "1"}  # fmt: skip
        return self._step("order_cancelled", params, at)


def scenario_fixtures() -> dict[str, dict[str, Any]]:
    """Every scenario by file name: the pushes of one order in arrival order and the order
    SPEC §5 folds them into, written from the SPEC's table (user paid: ``total`` 34.0 yuan).

    The accept hold decides whether an order is *stored*, not its folded state, and the
    harness has no way to expect "never stored": the two cancel scenarios give the folded
    state the order has once the hold has elapsed."""
    scenarios: dict[str, dict[str, Any]] = {}

    def add(slug: str, description: str, steps: list[dict[str, Any]],
            expect: dict[str, Any]) -> None:  # fmt: skip
        scenarios[slug] = {"description": description, "steps": steps, "expect": expect}

    s = Steps("27061900338300001")
    add("delivered", "paid, confirmed, rider 10/15/20/40, completed", [
        s.order(2, 0), s.order(4, 60), s.rider(10, 600), s.rider(15, 700), s.rider(20, 900),
        s.rider(40, 1500), s.order(8, 1800),
    ], {"state": "completed", "rider_state": "delivered", "saved_state": None,
        "platform_state": 18, "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("27061900338300002")
    add("partial_cancel_agreed",
        "a partial refund (one cola) applied for and agreed before delivery: the remembered "
        "state (paid) is restored", [
        s.order(2, 0), s.order(4, 60), s.refund("part", "68000000021", 300, 305, part=True),
        s.refund("agree", "68000000021", 300, 400, part=True),
    ], {"state": "paid", "rider_state": None, "saved_state": None, "platform_state": 33,
        "refunded_amount_fen": 500})  # fmt: skip

    s = Steps("27061900338300003")
    add("partial_cancel_then_completed",
        "a partial refund agreed before delivery, then delivered and completed: "
        "partially_refunded", [
        s.order(2, 0), s.order(4, 60), s.refund("part", "68000000031", 300, 305, part=True),
        s.refund("agree", "68000000031", 300, 400, part=True), s.rider(20, 900),
        s.rider(40, 1500), s.order(8, 1800),
    ], {"state": "partially_refunded", "rider_state": "delivered", "saved_state": None,
        "platform_state": 18, "refunded_amount_fen": 500})  # fmt: skip

    s = Steps("27061900338300004")
    add("two_refunds_second_withdrawn",
        "after completion a partial refund agreed, then a full refund applied for and "
        "withdrawn by the user: partially_refunded", [
        s.order(2, 0), s.order(4, 60), s.rider(40, 1500), s.order(8, 1800),
        s.refund("part", "68000000041", 3600, 3605, part=True),
        s.refund("agree", "68000000041", 3600, 3700, part=True),
        s.refund("apply", "68000000042", 7200, 7205),
        s.refund("cancelRefund", "68000000042", 7200, 7300),
    ], {"state": "partially_refunded", "rider_state": "delivered", "saved_state": None,
        "platform_state": 31, "refunded_amount_fen": 500})  # fmt: skip

    s = Steps("27061900338300005")
    add("two_refunds_second_agreed",
        "after completion a partial refund (5.00) agreed, then a full refund agreed: "
        "refunded, the rest of the 34.00 paid (29.00) back", [
        s.order(2, 0), s.order(4, 60), s.rider(40, 1500), s.order(8, 1800),
        s.refund("part", "68000000051", 3600, 3605, part=True),
        s.refund("agree", "68000000051", 3600, 3700, part=True),
        s.refund("apply", "68000000052", 7200, 7205),
        s.refund("agree", "68000000052", 7200, 7300),
    ], {"state": "refunded", "saved_state": None, "platform_state": 33,
        "refunded_amount_fen": 3400})  # fmt: skip

    s = Steps("27061900338300006")
    add("completed_while_refund_pending",
        "the user confirms delivery (status 8) while a refund request is pending: stays "
        "refunding, completion remembered", [
        s.order(2, 0), s.order(4, 60), s.rider(40, 1500),
        s.refund("apply", "68000000061", 1600, 1605), s.order(8, 1800),
    ], {"state": "refunding", "rider_state": "delivered", "saved_state": "completed",
        "platform_state": 18, "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("27061900338300007")
    add("completed_while_refund_pending_rejected",
        "completed while a refund request is pending, then the request rejected: completed", [
        s.order(2, 0), s.order(4, 60), s.rider(40, 1500),
        s.refund("apply", "68000000071", 1600, 1605), s.order(8, 1800),
        s.refund("reject", "68000000071", 1600, 1900),
    ], {"state": "completed", "rider_state": "delivered", "saved_state": None,
        "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("27061900338300008")
    add("completed_while_refund_pending_agreed",
        "completed while a refund request is pending, then the request agreed: refunded, "
        "the 34.00 paid back", [
        s.order(2, 0), s.order(4, 60), s.rider(40, 1500),
        s.refund("apply", "68000000081", 1600, 1605), s.order(8, 1800),
        s.refund("agree", "68000000081", 1600, 1900),
    ], {"state": "refunded", "rider_state": "delivered", "saved_state": None,
        "refunded_amount_fen": 3400})  # fmt: skip

    s = Steps("27061900338300009")
    add("cancelled_before_acceptance",
        "paid, then cancelled by the user before the merchant confirmed (reason_code 1102): "
        "14; never stored by the pipeline (no acceptance), folded: refunded", [
        s.order(2, 0), s.cancelled("1102", "用户取消，商家确认前取消", 30),
    ], {"state": "refunded", "rider_state": None, "platform_state": 14,
        "refunded_amount_fen": 3400})  # fmt: skip

    s = Steps("27061900338300010")
    add("cancelled_after_acceptance",
        "confirmed, then cancelled 30 s later (reason_code 2009): 17 force_invalidated; the "
        "pipeline never stores it when the cancel comes within the accept hold, folded: "
        "refunded", [
        s.order(2, 0), s.order(4, 60), s.cancelled("2009", "商品已售完", 90),
    ], {"state": "refunded", "rider_state": None, "platform_state": 17,
        "refunded_amount_fen": 3400})  # fmt: skip
    return scenarios


def config() -> dict[str, Any]:
    """``config.json``: the plugin config every fixture is written for (without
    ``platform``), as an ISV app's, so that the contract harness authorizes its stores and
    every API call it makes carries a store's token (the fixtures read the same either
    way; the plugin's own tests default to a developer app's, ``FIXTURE_SETTINGS``)."""
    return {
        "public_base_url": FIXTURE_PUBLIC_BASE_URL,
        "settings": {**FIXTURE_SETTINGS, "app_type": "isv"},
        "stores": {store: dict(binding) for store, binding in FIXTURE_STORES.items()},
    }


def build() -> dict[str, str]:
    """Every fixture file's path below ``fixtures/`` and its text."""
    files = {"config.json": config()}
    files |= {f"push/{name}.json": fixture for name, fixture in push_fixtures().items()}
    files |= {f"action/{name}.json": fixture for name, fixture in action_fixtures().items()}
    files |= {f"errors/{name}.json": fixture for name, fixture in error_fixtures().items()}
    files |= {f"scenarios/{name}.json": fixture for name, fixture in scenario_fixtures().items()}
    return {
        path: json.dumps(content, ensure_ascii=False, indent=2) + "\n"
        for path, content in files.items()
    }


def main() -> None:
    """Write the fixtures (and drop stale ones)."""
    wanted = build()
    for stale in HERE.rglob("*.json"):
        if stale.relative_to(HERE).as_posix() not in wanted:
            stale.unlink()
    for path, text in wanted.items():
        target = HERE / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} fixtures to {HERE} (public base URL {FIXTURE_PUBLIC_BASE_URL})")


if __name__ == "__main__":
    main()

"""Write the Eleme plugin's fixtures: ``waimai_bridge_eleme/fixtures/``.

    python plugins/eleme/make_fixtures.py

Each push fixture is a raw request (signed with the fixture secret) and what the plugin
must make of it; each action fixture an action and the API call it must become; each error
fixture an action, the fake's scripted answer and how it must be classified; each scenario
a sequence of pushes and the order the shared state machine folds them into. The
expected values are written here by hand from platforms.md and SPEC §4.1/§6 — never
copied from the plugin's output — so the fixtures test the plugin. The three ``sample-*``
fixtures are the research samples (../shared/research/samples), signatures and all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from waimai_bridge_eleme import examples
from waimai_bridge_eleme.signing import compact_json
from waimai_bridge_eleme.testing import FIXTURE_SETTINGS, FIXTURE_STORES, push_body

FOLDER = Path(__file__).parent / "waimai_bridge_eleme" / "fixtures"
SECRET = str(FIXTURE_SETTINGS["app_secret"])
APP_ID = int(FIXTURE_SETTINGS["app_id"])
SHOP = 160012345
ORDER = "3084512398765432101"
T = 1_716_181_200  # seconds
ACK = {"status": 200, "body": '{"message":"ok"}'}
NO_MONEY: dict[str, Any] = {
    "partial": False,
    "refund_amount_fen": None,
    "refunded_items": [],
    "reason": None,
}


def request(body: bytes, method: str = "POST") -> dict[str, Any]:
    return {
        "method": method,
        "kind": None,
        "query": [],
        "headers": {"content-type": "application/json;charset=utf-8"} if body else {},
        "body": body.decode("utf-8"),
    }


def event(code: int, time_ms: int, request_id: str, order: str = ORDER) -> dict[str, Any]:
    return {
        "store_id": "S001",
        "platform_order_id": order,
        "native_code": str(code),
        "idempotency_key": request_id,
        "platform_time_ms": time_ms,
    }


def state(code: int | None, **money: Any) -> dict[str, Any]:
    return {"state": code, "kitchen_step": None, **NO_MONEY, **money}


def push(
    name: str, description: str, push_type: int, message: dict[str, Any], *,
    time_ms: int, expected_state: dict[str, Any], order: str = ORDER,
    price: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    request_id = str(200015698900990000 + push_type)
    body = push_body(
        push_type, message, app_id=APP_ID, shop_id=SHOP, secret=SECRET,
        request_id=request_id, timestamp_ms=T * 1000 + 777,
    )  # fmt: skip
    return name, {
        "description": description,
        "request": request(body),
        "expect": {
            "reply": ACK,
            "events": [event(push_type, time_ms, request_id, order)],
            "states": [expected_state],
            "price": price,
        },
    }


def sample(name: str, description: str, path: str, **expect: Any) -> tuple[str, dict[str, Any]]:
    envelope = json.loads(SAMPLES[path])
    return name, {
        "description": description,
        "request": request(compact_json(envelope).encode("utf-8")),
        "expect": {"reply": ACK, **expect},
    }


def status_fixtures() -> list[tuple[str, dict[str, Any]]]:
    rows = [
        (12, "valid", "商户接单: accepted"),
        (14, "invalid", "订单被取消: cancelled before acceptance"),
        (15, "invalid", "订单置为无效: invalidated"),
        (17, "invalid", "订单强制无效: forcibly invalidated"),
        (18, "settled", "订单完结: completed"),
    ]
    return [
        push(
            f"status-{code}",
            description,
            code,
            examples.status(ORDER, SHOP, eleme_state, T),
            time_ms=T * 1000,
            expected_state=state(code),
        )
        for code, eleme_state, description in rows
    ]


def refund_fixtures() -> list[tuple[str, dict[str, Any]]]:
    full = {"refund_amount_fen": 3500, "reason": "用户申请"}
    partial = {
        "partial": True, "refund_amount_fen": 1000, "reason": "用户申请",
        "refunded_items": [{"name": "可乐-330ml", "quantity": 2, "sku_code": None,
                            "platform_sku_id": None, "amount_fen": 1000}],
    }  # fmt: skip
    rows: list[tuple[int, str, bool, int | None, str]] = [
        (20, "applied", False, 20, "用户申请取消单: cancel requested"),
        (21, "noRefund", False, 21, "用户取消取消单申请: cancel withdrawn"),
        (22, "rejected", False, 22, "商户拒绝取消单: cancel rejected"),
        (23, "successful", True, 23, "商户同意取消单 (partial): cancel agreed for one line"),
        (24, "arbitrating", False, None, "用户申请仲裁取消单: arbitration, ignored"),
        (30, "applied", True, 30, "用户申请退单 (partial): refund requested for one line"),
        (31, "noRefund", False, 31, "用户取消退单: refund withdrawn"),
        (32, "rejected", False, 32, "商户拒绝退单: refund rejected"),
        (33, "successful", False, 33, "商户同意退单: full refund agreed"),
        (35, "successful", False, None, "客服仲裁退单有效: arbitration, ignored"),
    ]
    fixtures = []
    for code, refund_status, is_partial, baseline, description in rows:
        lines = (("可乐-330ml", 2, 500),) if is_partial else ()
        message = examples.refund(
            ORDER, SHOP, refund_status, T, partial_lines=lines,
            total_fen=None if is_partial else 3500,
        )  # fmt: skip
        fixtures.append(
            push(
                f"refund-{code}",
                description,
                code,
                message,
                time_ms=T * 1000,
                expected_state=state(baseline, **(partial if is_partial else full)),
            )
        )
    return fixtures


def delivery_fixtures() -> list[tuple[str, dict[str, Any]]]:
    rows = [
        (51, "tobeAssignedMerchant", None, "订单待分配配送商: ignored"),
        (53, "tobeFetched", 53, "配送员取餐中: rider awaiting pickup"),
        (54, "arrived", 54, "配送员已到店: rider at the store"),
        (56, "completed", 56, "配送成功: delivered"),
        (57, "cancelled", None, "配送取消: ignored"),
        (60, "exception", None, "配送失败 (呼叫配送晚): ignored"),
        (71, "selfDelivery", None, "自行配送: ignored"),
    ]
    return [
        push(
            f"delivery-{code}",
            description,
            code,
            examples.delivery(ORDER, SHOP, eleme_state, T * 1000 + 456),
            time_ms=T * 1000 + 456,
            expected_state=state(baseline),
        )
        for code, eleme_state, baseline, description in rows
    ]


def other_fixtures() -> list[tuple[str, dict[str, Any]]]:
    deauthorised = {"shopId": SHOP, "appId": APP_ID, "appName": "示例", "relieveOAuthTime": T}
    return [
        push(
            "reminder-45", "用户催单: a reminder, kept and ignored", 45,
            {"orderId": ORDER, "shopId": SHOP, "remindId": 1, "userId": 1},
            time_ms=T * 1000 + 777, expected_state=state(None),
        ),
        ("deauthorised-100", {
            "description": "解除授权: no event; parse_event gives a notice that store S001's "
                           "channel is unauthorized",
            "request": request(push_body(
                100, deauthorised, app_id=APP_ID, shop_id=SHOP, secret=SECRET,
                request_id=str(200015698900990100), timestamp_ms=T * 1000 + 777,
            )),
            "expect": {"reply": ACK, "events": [], "states": [], "price": None},
        }),
        ("probe-get", {
            "description": "the console's URL check by GET",
            "request": request(b"", "GET"),
            "expect": {"reply": ACK, "events": [], "states": [], "price": None},
        }),
        ("probe-empty-post", {
            "description": "the console's URL check: an empty POST",
            "request": request(b""),
            "expect": {"reply": ACK, "events": [], "states": [], "price": None},
        }),
    ]  # fmt: skip


def sample_fixtures() -> list[tuple[str, dict[str, Any]]]:
    items = [
        {"sku_code": "SKU-1001", "platform_sku_id": "200000203668448543",
         "name": "宫保鸡丁-大份[微辣]", "quantity": 1, "unit_original": 2800,
         "unit_paid": 2800, "product_id": None},
        {"sku_code": "SKU-2002-330", "platform_sku_id": "200000203668448999",
         "name": "可乐-330ml", "quantity": 2, "unit_original": 500, "unit_paid": 400,
         "product_id": None},
    ]  # fmt: skip
    price = {
        "items": items, "original_amount": 4500, "packaging_fee": 200, "delivery_fee": 500,
        "merchant_discount": 800, "platform_discount": 200, "user_paid": 3500,
        "commission": 480, "merchant_income": 2720,
    }  # fmt: skip
    return [
        sample(
            "sample-order-created", "订单生效: the research sample's OOrder, priced",
            "eleme_order_created.json",
            events=[event(10, 1716177490123, "200015698900989850")],
            states=[state(10)], price=price,
        ),
        sample(
            "sample-refund-apply", "用户申请退单: the research sample, one line partially",
            "eleme_refund_apply.json",
            events=[event(30, 1716181234000, "200015698900990123")],
            states=[state(30, partial=True, refund_amount_fen=500, reason="商品少送了一罐可乐",
                          refunded_items=[{"name": "可乐-330ml", "quantity": 1,
                                           "sku_code": None, "platform_sku_id": None,
                                           "amount_fen": 500}])],
            price=None,
        ),
        sample(
            "sample-delivery", "配送员配送中: the research sample",
            "eleme_delivery.json",
            events=[event(55, 1716178800000, "200015698900990001")],
            states=[state(55)], price=None,
        ),
    ]  # fmt: skip


def action_fixtures() -> list[tuple[str, dict[str, Any]]]:
    rows = [
        ("confirm", None, "eleme.order.confirmOrderLite", {"orderId": ORDER}),
        ("cancel", "sold_out: 鸡丁卖完了", "eleme.order.cancelOrderLite",
         {"orderId": ORDER, "type": "foodSoldOut", "remark": "鸡丁卖完了"}),
        ("agree_cancel", None, "eleme.order.agreeRefundLite", {"orderId": ORDER}),
        ("reject_cancel", "已经出餐", "eleme.order.disagreeRefundLite",
         {"orderId": ORDER, "reason": "已经出餐"}),
        ("agree_refund", None, "eleme.order.agreeRefundLite", {"orderId": ORDER}),
        ("reject_refund", "商品无问题", "eleme.order.disagreeRefundLite",
         {"orderId": ORDER, "reason": "商品无问题"}),
    ]  # fmt: skip
    return [
        (f"action-{action}", {
            "description": f"{action} → {method}",
            "action": {"action_id": f"A-{action}", "action": action,
                       "platform_order_id": ORDER, "store_id": "S001", "reason": reason,
                       "attempt": 1},
            "expect": {"method": "POST", "path": method, "params": params,
                       "result": {"outcome": "done", "code": None, "message": None}},
        })
        for action, reason, method, params in rows
    ]  # fmt: skip


def error_fixtures() -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
        ("server-error", {"error": {"code": "SERVER_ERROR", "message": "服务器错误"}}, {},
         "transient", "SERVER_ERROR"),
        ("rate-limited", {"error": {"code": "EXCEED_LIMIT", "message": "限流"}}, {},
         "transient", "EXCEED_LIMIT"),
        ("bad-gateway", {"http": 502}, {}, "transient", "HTTP_502"),
        # sent, and the answer lost: whether it took effect is unknown (verify_action reads it)
        ("time-out", {"slow": 2.0}, {"timeout_seconds": 0.5}, "unknown", "TIMEOUT"),
        ("dropped", {"drop": True}, {}, "unknown", "NETWORK"),
        ("wrong-order-state", {"error": {"code": "BIZ_ORDER_STATUS_ERROR",
                                         "message": "订单状态不正确"}}, {},
         "rejected", "BIZ_ORDER_STATUS_ERROR"),
        ("not-found", {"http": 404, "body": "no"}, {}, "rejected", "HTTP_404"),
    ]  # fmt: skip
    return [
        (f"errors/{slug}", {
            "description": f"confirm, the platform answers {answer}: {outcome} {code}",
            "action": {"action_id": f"A-{slug}", "action": "confirm", "platform_order_id": ORDER,
                       "store_id": "S001", "reason": None, "attempt": 1},
            "answer": answer,
            "settings": settings,
            "expect": {"result": {"outcome": outcome, "code": code}},
        })
        for slug, answer, settings, outcome, code in rows
    ]  # fmt: skip


STATUS_OF = {12: "valid", 14: "invalid", 15: "invalid", 17: "invalid", 18: "settled"}
REFUND_STATUS_OF = {20: "applied", 21: "noRefund", 22: "rejected", 23: "successful",
                    30: "applied", 31: "noRefund", 32: "rejected", 33: "successful"}  # fmt: skip
DELIVERY_OF = {53: "tobeFetched", 54: "arrived", 55: "delivering", 56: "completed"}


def scenario_step(order: str, code: str, minute: int) -> dict[str, Any]:
    """The signed push of ``code`` ("18", or "23p" for a partial one) at minute ``minute``."""
    push_type, partial = int(code.rstrip("p")), code.endswith("p")
    seconds = T + minute * 60
    message: dict[str, Any]
    if push_type == 10:
        message = examples.new_order(order, SHOP)
    elif push_type in STATUS_OF:
        message = examples.status(order, SHOP, STATUS_OF[push_type], seconds)
    elif push_type in DELIVERY_OF:
        message = examples.delivery(order, SHOP, DELIVERY_OF[push_type], seconds * 1000)
    else:
        message = examples.refund(
            order, SHOP, REFUND_STATUS_OF[push_type], seconds,
            partial_lines=(("可乐-330ml", 1, 500),) if partial else (),
            total_fen=None if partial else 3500,
        )  # fmt: skip
    body = push_body(
        push_type, message, app_id=APP_ID, shop_id=SHOP, secret=SECRET,
        request_id=f"{order}-{minute:02d}-{push_type}", timestamp_ms=seconds * 1000 + 123,
    )  # fmt: skip
    return {"request": request(body)}


def scenario_fixtures() -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, str, tuple[str, ...], dict[str, Any]]] = [
        ("completed", "accepted, delivered, completed",
         ("10", "12", "53", "54", "55", "56", "18"),
         {"state": "completed", "rider_state": "delivered", "saved_state": None,
          "platform_state": 18, "refunded_amount_fen": 0}),
        ("cancel-withdrawn", "a cancel request withdrawn while the rider waits",
         ("10", "12", "20", "53", "21"),
         {"state": "ready", "rider_state": "awaiting_pickup", "saved_state": None,
          "platform_state": 21}),
        ("cancel-partial", "one line cancelled, the rest delivered and completed",
         ("10", "12", "20p", "23p", "55", "56", "18"),
         {"state": "partially_refunded", "rider_state": "delivered",
          "refunded_amount_fen": 500}),
        ("cancel-pending-completed", "completed while a cancel request is pending",
         ("10", "12", "20", "56", "18"),
         {"state": "refunding", "saved_state": "completed", "rider_state": "delivered"}),
        ("refund-agreed", "a full refund after completion",
         ("10", "12", "56", "18", "30", "33"),
         {"state": "refunded", "platform_state": 33, "refunded_amount_fen": 3500}),
        ("refund-rejected", "a refund request rejected", ("10", "12", "18", "30", "32"),
         {"state": "completed", "saved_state": None}),
        ("force-invalidated", "forcibly invalidated after acceptance: the user's payment back",
         ("10", "12", "17"), {"state": "refunded", "refunded_amount_fen": 3500}),
    ]  # fmt: skip
    fixtures = []
    for number, (slug, description, codes, expect) in enumerate(rows, start=1):
        order = f"30845123987654{number:05d}"
        fixtures.append((f"scenarios/{slug}", {
            "description": description,
            "steps": [scenario_step(order, code, minute) for minute, code in enumerate(codes)],
            "expect": expect,
        }))  # fmt: skip
    return fixtures


SAMPLES: dict[str, str] = {}


def main() -> None:
    samples = Path(__file__).resolve().parents[3] / "shared" / "research" / "samples"
    for name in ("eleme_order_created.json", "eleme_refund_apply.json", "eleme_delivery.json"):
        SAMPLES[name] = (samples / name).read_text(encoding="utf-8")
    FOLDER.mkdir(exist_ok=True)
    for old in FOLDER.rglob("*.json"):
        old.unlink()
    config = {
        "public_base_url": "https://bridge.example.com",
        "settings": dict(FIXTURE_SETTINGS),
        "stores": {store: dict(binding) for store, binding in FIXTURE_STORES.items()},
    }
    written = [
        ("config", config),
        *sample_fixtures(), *status_fixtures(), *refund_fixtures(), *delivery_fixtures(),
        *other_fixtures(), *action_fixtures(), *error_fixtures(), *scenario_fixtures(),
    ]  # fmt: skip
    for name, content in written:
        text = json.dumps(content, ensure_ascii=False, indent=2) + "\n"
        (FOLDER / f"{name}.json").parent.mkdir(exist_ok=True)
        (FOLDER / f"{name}.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(written)} files to {FOLDER}")


if __name__ == "__main__":
    main()

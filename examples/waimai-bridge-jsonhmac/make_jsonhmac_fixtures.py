"""Write the plugin's fixtures: ``waimai_bridge_jsonhmac/fixtures/``.

    python make_jsonhmac_fixtures.py

The expected values are written from the protocol (README.md), not copied from the plugin's
output, so the fixtures test the plugin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from waimai_bridge_jsonhmac.testing import signed_push

FOLDER = Path(__file__).parent / "waimai_bridge_jsonhmac" / "fixtures"
APP_ID, SECRET = "demo-app", "jsonhmac-fixture-secret-0123456789"
SHOP, ORDER = "SH-001", "O-20240520-0001"
T = 1_716_181_200_000
ACK = {"status": 200, "body": '{"ok":true}'}
CONFIG = {
    "public_base_url": "https://bridge.example.com",
    "settings": {
        "app_id": APP_ID,
        "app_secret": SECRET,
        "api_base": "https://api.jsonhmac.example/v1/",
    },
    "stores": {"S001": {"shop_id": SHOP}, "S002": {"shop_id": "SH-002"}},
}
NEW_ORDER = {
    "items": [
        {
            "sku": "SKU-1001",
            "item_id": "P-1",
            "name": "宫保鸡丁",
            "quantity": 1,
            "unit_price": 2800,
            "unit_paid": 2800,
        },
        {
            "sku": "SKU-2002",
            "item_id": "P-2",
            "name": "可乐",
            "quantity": 2,
            "unit_price": 500,
            "unit_paid": 400,
        },
    ],
    "amounts": {
        "original": 4500,
        "packaging": 200,
        "delivery": 500,
        "merchant_discount": 800,
        "platform_discount": 200,
        "paid": 3500,
        "commission": 480,
        "income": 2720,
    },
}
PRICE = {
    "items": [
        {
            "sku_code": "SKU-1001",
            "platform_sku_id": "P-1",
            "name": "宫保鸡丁",
            "quantity": 1,
            "unit_original": 2800,
            "unit_paid": 2800,
            "product_id": None,
        },
        {
            "sku_code": "SKU-2002",
            "platform_sku_id": "P-2",
            "name": "可乐",
            "quantity": 2,
            "unit_original": 500,
            "unit_paid": 400,
            "product_id": None,
        },
    ],
    "original_amount": 4500,
    "packaging_fee": 200,
    "delivery_fee": 500,
    "merchant_discount": 800,
    "platform_discount": 200,
    "user_paid": 3500,
    "commission": 480,
    "merchant_income": 2720,
}
PARTIAL = {
    "partial": True,
    "amount": 400,
    "reason": "少送一瓶可乐",
    "items": [{"name": "可乐", "quantity": 1, "sku": "SKU-2002", "amount": 400}],
}
FULL = {"partial": False, "amount": 3500, "reason": "不想要了"}


def message(
    code: str,
    event_id: str,
    time_ms: int,
    data: dict[str, Any] | None = None,
    order: str | None = ORDER,
    shop: str = SHOP,
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": code,
        "shop_id": shop,
        "order_id": order,
        "time_ms": time_ms,
        "data": data or {},
    }


def request(document: dict[str, Any], *, secret: str = SECRET) -> dict[str, Any]:
    headers, body = signed_push(document, app_id=APP_ID, secret=secret, timestamp_ms=T + 999)
    return {"method": "POST", "kind": None, "query": [], "headers": headers, "body": body}


def state(code: int | None, **money: Any) -> dict[str, Any]:
    return {
        "state": code,
        "kitchen_step": None,
        "partial": False,
        "refund_amount_fen": None,
        "refunded_items": [],
        "reason": None,
        **money,
    }


def refunded(data: dict[str, Any]) -> dict[str, Any]:
    items = [
        {
            "name": i["name"],
            "quantity": i["quantity"],
            "sku_code": i["sku"],
            "platform_sku_id": None,
            "amount_fen": i["amount"],
        }
        for i in data.get("items", [])
    ]
    return {
        "partial": data["partial"],
        "refund_amount_fen": data["amount"],
        "refunded_items": items,
        "reason": data["reason"],
    }


def push(
    code: str,
    expected: dict[str, Any],
    data: dict[str, Any] | None = None,
    *,
    order: str | None = ORDER,
    price: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    event_id = f"evt-{code}"
    return {
        "description": description or code,
        "request": request(message(code, event_id, T, data, order)),
        "expect": {
            "reply": ACK,
            "events": [
                {
                    "store_id": "S001",
                    "platform_order_id": order or f"shop:{SHOP}",
                    "native_code": code,
                    "idempotency_key": event_id,
                    "platform_time_ms": T,
                }
            ],
            "states": [expected],
            "price": price,
        },
    }


def push_fixtures() -> dict[str, dict[str, Any]]:
    simple = {
        "order.accepted": 12,
        "order.invalidated": 15,
        "order.completed": 18,
        "cancel.withdrawn": 21,
        "cancel.rejected": 22,
        "refund.withdrawn": 31,
        "refund.rejected": 32,
        "rider.assigned": 53,
        "rider.arrived": 54,
        "rider.picked_up": 55,
        "rider.delivered": 56,
    }
    fixtures = {f"push/{code}": push(code, state(baseline)) for code, baseline in simple.items()}
    bad = message("order.accepted", "evt-bad", T)
    unknown_shop = message("order.accepted", "evt-shop", T, shop="SH-999")
    fixtures |= {
        "push/order.created": push("order.created", state(10), NEW_ORDER, price=PRICE),
        "push/order.cancelled-before": push(
            "order.cancelled",
            state(14, reason="用户取消"),
            {"after_acceptance": False, "reason": "用户取消"},
            description="cancelled, unaccepted",
        ),
        "push/order.cancelled-after": push(
            "order.cancelled",
            state(17, reason="商家取消"),
            {"after_acceptance": True, "reason": "商家取消"},
            description="cancelled, accepted",
        ),
        "push/cancel.requested": push("cancel.requested", state(20, **refunded(FULL)), FULL),
        "push/cancel.agreed-partial": push(
            "cancel.agreed", state(23, **refunded(PARTIAL)), PARTIAL
        ),
        "push/refund.requested-partial": push(
            "refund.requested", state(30, **refunded(PARTIAL)), PARTIAL
        ),
        "push/refund.agreed": push("refund.agreed", state(33, **refunded(FULL)), FULL),
        "push/order.reminder": push("order.reminder", state(None)),
        "push/shop.updated": push("shop.updated", state(None), order=None),
        "push/probe-get": {
            "description": "the console's URL check",
            "request": {"method": "GET", "body": ""},
            "expect": {"reply": ACK, "events": [], "states": [], "price": None},
        },
        "push/refused-signature": {
            "description": "signed with another secret: 401",
            "request": request(bad, secret="another-secret-0123456789"),
            "expect": {
                "reply": {
                    "status": 401,
                    "body": '{"ok":false,"error":"the signature does not match"}',
                },
                "refused": "BadSignature",
                "events": [],
                "states": [],
                "price": None,
            },
        },
        "push/refused-unknown-shop": {
            "description": "a shop no store is bound to: 400",
            "request": request(unknown_shop),
            "expect": {
                "reply": {
                    "status": 400,
                    "body": '{"ok":false,"error":"no store is bound to shop_id SH-999"}',
                },
                "refused": "UnknownStore",
                "events": [],
                "states": [],
                "price": None,
            },
        },
    }
    return fixtures


def action_fixtures() -> dict[str, dict[str, Any]]:
    rows = [
        ("confirm", None, "confirm"),
        ("cancel", "卖完了", "cancel"),
        ("agree_cancel", None, "cancellation/agree"),
        ("reject_cancel", "已出餐", "cancellation/reject"),
        ("agree_refund", None, "refund/agree"),
        ("reject_refund", "商品无问题", "refund/reject"),
        ("meal_ready", None, "meal-ready"),
    ]
    fixtures = {}
    for action, reason, path in rows:
        params = {"shop_id": SHOP} | ({"reason": reason} if reason else {})
        fixtures[f"action/{action}"] = {
            "description": f"{action} → POST orders/{{id}}/{path}",
            "action": {
                "action_id": f"A-{action}",
                "action": action,
                "platform_order_id": ORDER,
                "store_id": "S001",
                "reason": reason,
                "attempt": 1,
            },
            "expect": {
                "method": "POST",
                "path": f"orders/{ORDER}/{path}",
                "params": params,
                "result": {"outcome": "done", "code": None, "message": None},
            },
        }
    return fixtures


def error_fixtures() -> dict[str, dict[str, Any]]:
    busy = {"ok": False, "code": "BUSY", "message": "稍后再试"}
    state_error = {"ok": False, "code": "ORDER_STATE", "message": "订单已取消"}
    rows = [
        ("unavailable", {"status": 503, "body": busy}, {}, "transient", "BUSY"),
        ("rate-limited", {"status": 429, "body": "slow down"}, {}, "transient", "HTTP_429"),
        ("time-out", {"slow": 1.0}, {"timeout_seconds": 0.3}, "transient", "TIMEOUT"),
        ("dropped", {"drop": True}, {}, "transient", "NETWORK"),
        ("wrong-order-state", {"status": 409, "body": state_error}, {}, "rejected", "ORDER_STATE"),
        ("not-found", {"status": 404, "body": "no such order"}, {}, "rejected", "HTTP_404"),
    ]
    return {
        f"error/{slug}": {
            "description": f"confirm, answered {answer}",
            "action": {
                "action_id": f"A-{slug}",
                "action": "confirm",
                "platform_order_id": ORDER,
                "store_id": "S001",
                "reason": None,
                "attempt": 1,
            },
            "answer": answer,
            "settings": settings,
            "expect": {"result": {"outcome": outcome, "code": code}},
        }
        for slug, answer, settings, outcome, code in rows
    }


def scenario(order: str, steps: list[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    return [
        {"request": request(message(code, f"{order}-{n}", T + n * 60_000, data, order))}
        for n, (code, data) in enumerate(steps)
    ]


def scenario_fixtures() -> dict[str, dict[str, Any]]:
    created: tuple[str, dict[str, Any] | None] = ("order.created", NEW_ORDER)
    accepted: tuple[str, dict[str, Any] | None] = ("order.accepted", None)
    return {
        "scenario/completed": {
            "description": "accepted, delivered, completed",
            "steps": scenario(
                "O-S1",
                [
                    created,
                    accepted,
                    ("rider.assigned", None),
                    ("rider.picked_up", None),
                    ("rider.delivered", None),
                    ("order.completed", None),
                ],
            ),
            "expect": {
                "state": "completed",
                "rider_state": "delivered",
                "platform_state": 18,
                "refunded_amount_fen": 0,
            },
        },
        "scenario/partial-refund": {
            "description": "completed, then one line refunded",
            "steps": scenario(
                "O-S2",
                [
                    created,
                    accepted,
                    ("order.completed", None),
                    ("refund.requested", PARTIAL),
                    ("refund.agreed", PARTIAL),
                ],
            ),
            "expect": {
                "state": "partially_refunded",
                "saved_state": None,
                "refunded_amount_fen": 400,
            },
        },
        "scenario/cancel-pending": {
            "description": "a cancel request while the rider delivers",
            "steps": scenario(
                "O-S3", [created, accepted, ("rider.picked_up", None), ("cancel.requested", FULL)]
            ),
            "expect": {
                "state": "refunding",
                "saved_state": "delivering",
                "rider_state": "delivering",
            },
        },
        "scenario/merchant-cancelled": {
            "description": "cancelled by the merchant after acceptance: all money back",
            "steps": scenario(
                "O-S4", [created, accepted, ("order.cancelled", {"after_acceptance": True})]
            ),
            "expect": {"state": "refunded", "platform_state": 17, "refunded_amount_fen": 3500},
        },
    }


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for old in FOLDER.rglob("*.json"):
        old.unlink()
    written = {
        "config": CONFIG,
        **push_fixtures(),
        **action_fixtures(),
        **error_fixtures(),
        **scenario_fixtures(),
    }
    for name, content in written.items():
        path = FOLDER / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"wrote {len(written)} files to {FOLDER}")


if __name__ == "__main__":
    main()

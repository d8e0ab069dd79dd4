"""Write the own_pos plugin's fixtures: ``waimai_bridge_own_pos/fixtures/``.

    python plugins/own_pos/make_own_pos_fixtures.py

Each fixture is a raw request, signed with the fixture secret at a fixed time and carrying
``received_at_ms`` a few seconds later (inside the replay window, so a harness can replay
it), and what the plugin must make of it. The expected values are written here by hand
from the README's format and SPEC §4.1/§6 — never copied from the plugin's output — so the
fixtures test the plugin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from waimai_bridge_own_pos import examples
from waimai_bridge_own_pos.testing import FIXTURE_SETTINGS, FIXTURE_STORES, signed_push

FOLDER = Path(__file__).parent / "waimai_bridge_own_pos" / "fixtures"
SECRET = str(FIXTURE_SETTINGS["secret"])
STORE_CODE = "POS-001"  # S001's pos_store_code
ORDER = "OWN-20240520-0001"
T = 1_716_181_200  # seconds: when every fixture push is signed
RECEIVED_MS = T * 1000 + 1_250  # when the bridge receives it: 1.25 s later
ACK = {"status": 200, "body": '{"ok":true}'}
NO_MONEY: dict[str, Any] = {
    "partial": False,
    "refund_amount_fen": None,
    "refunded_items": [],
    "reason": None,
}
COLA = {"name": "可乐-330ml", "quantity": 1, "sku_code": "SKU-2002-330",
        "platform_sku_id": None, "amount_fen": 400}  # fmt: skip


def request(body: bytes, headers: dict[str, str], method: str = "POST") -> dict[str, Any]:
    return {
        "method": method,
        "kind": None,
        "query": [],
        "headers": {name.lower(): value for name, value in headers.items()},
        "body": body.decode("utf-8"),
        "received_at_ms": RECEIVED_MS,
    }


def event(message: dict[str, Any], store_id: str = "S001") -> dict[str, Any]:
    return {
        "store_id": store_id,
        "platform_order_id": str(message["order_id"]),
        "native_code": message["event"],
        "idempotency_key": message["message_id"],
        "platform_time_ms": message["event_time_ms"],
    }


def state(code: int | None, kitchen_step: str | None = None, **money: Any) -> dict[str, Any]:
    return {"state": code, "kitchen_step": kitchen_step, **NO_MONEY, **money}


def push(
    name: str, description: str, message: dict[str, Any], expected_state: dict[str, Any], *,
    price: dict[str, Any] | None = None, store_id: str = "S001",
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    body, headers = signed_push(message, secret=SECRET, timestamp_s=T)
    return name, {
        "description": description,
        "request": request(body, headers),
        "expect": {
            "reply": ACK,
            "events": [event(message, store_id)],
            "states": [expected_state],
            "price": price,
        },
    }


def minute(n: int) -> int:
    """The POS's time of a change, ``n`` minutes into the order's life (ms)."""
    return (T - 3600 + n * 60) * 1000


def order_fixtures() -> list[tuple[str, dict[str, Any]]]:
    items = [
        {"sku_code": "SKU-1001", "platform_sku_id": None, "name": "宫保鸡丁-大份[微辣]",
         "quantity": 1, "unit_original": 2800, "unit_paid": 2800, "product_id": None},
        {"sku_code": "SKU-2002-330", "platform_sku_id": None, "name": "可乐-330ml",
         "quantity": 2, "unit_original": 500, "unit_paid": 400, "product_id": None},
    ]  # fmt: skip
    price = {
        "items": items, "original_amount": 4500, "packaging_fee": 200, "delivery_fee": 500,
        "merchant_discount": 800, "platform_discount": 0, "user_paid": 3700,
        "commission": 0, "merchant_income": 3700,
    }  # fmt: skip
    by_own_id = examples.new_order("20240520002", "S002", minute(0), merchant_income_fen=3680)
    by_own_id["order_id"] = 20240520002  # an integer id is kept as a string
    return [
        push("order-created", "下单: the order with its lines and totals, priced",
             examples.new_order(ORDER, STORE_CODE, minute(0)), state(10), price=price),
        push("order-created-store-by-own-id",
             "下单 at S002, which the POS calls by its own store id; an integer order id; "
             "the merchant income stated (a payment fee)",
             by_own_id, state(10), store_id="S002", price={**price, "merchant_income": 3680}),
        push("order-accepted", "商家接单: accepted",
             examples.message("order.accepted", ORDER, STORE_CODE, minute(1)), state(12)),
        push("order-cancelled-14", "订单取消 before acceptance: 14",
             examples.cancelled(ORDER, STORE_CODE, minute(1), order_accepted=False,
                                reason="顾客不要了"),
             state(14, reason="顾客不要了")),
        push("order-cancelled-17", "订单取消 by the store after accepting: 17",
             examples.cancelled(ORDER, STORE_CODE, minute(3), order_accepted=True,
                                reason="宫保鸡丁售罄"),
             state(17, reason="宫保鸡丁售罄")),
        push("order-completed", "订单完成: completed",
             examples.message("order.completed", ORDER, STORE_CODE, minute(40)), state(18)),
    ]  # fmt: skip


def kitchen_fixtures() -> list[tuple[str, dict[str, Any]]]:
    rows = [
        ("kitchen.accept", "accepted", "厨房接单: kitchen step accepted, no platform state"),
        ("kitchen.start_preparing", "preparing", "开始制作: kitchen step preparing"),
        ("kitchen.mark_ready", "ready", "制作完成: kitchen step ready"),
    ]
    return [
        push(
            f"kitchen-{code.removeprefix('kitchen.')}",
            description,
            examples.message(code, ORDER, STORE_CODE, minute(2 + index * 5)),
            state(None, kitchen_step=step),
        )
        for index, (code, step, description) in enumerate(rows)
    ]


def rider_fixtures() -> list[tuple[str, dict[str, Any]]]:
    rows = [
        ("awaiting_pickup", 53, "骑手待取餐: rider awaiting pickup"),
        ("at_store", 54, "骑手已到店: rider at the store"),
        ("delivering", 55, "骑手配送中: rider delivering"),
        ("delivered", 56, "骑手已送达: rider delivered"),
    ]
    return [
        push(
            f"rider-{baseline}",
            description,
            examples.message(f"rider.{name}", ORDER, STORE_CODE, minute(15 + index * 5)),
            state(baseline),
        )
        for index, (name, baseline, description) in enumerate(rows)
    ]


def refund_fixtures() -> list[tuple[str, dict[str, Any]]]:
    def refund(event: str, at: int, completed: bool, **fields: Any) -> dict[str, Any]:
        return examples.refund(
            event, ORDER, STORE_CODE, minute(at), order_completed=completed, **fields
        )

    cola = (("SKU-2002-330", "可乐-330ml", 1, 400),)
    partial_in = {"partial": True, "amount_fen": 400, "lines": cola, "reason": "少送了一罐可乐"}
    partial_out: dict[str, Any] = {
        "partial": True, "refund_amount_fen": 400, "refunded_items": [COLA],
        "reason": "少送了一罐可乐",
    }  # fmt: skip
    return [
        push("refund-20", "申请退款 before completion: the cancel family, in full",
             refund("refund.requested", 10, False, amount_fen=3700, reason="不想要了"),
             state(20, refund_amount_fen=3700, reason="不想要了")),
        push("refund-21", "撤回退款 before completion",
             refund("refund.withdrawn", 11, False), state(21)),
        push("refund-22", "拒绝退款 before completion",
             refund("refund.rejected", 11, False, reason="已经出餐"),
             state(22, reason="已经出餐")),
        push("refund-23",
             "同意退款 before completion, in full with no amount stated "
             "(the state machine refunds what is left)",
             refund("refund.agreed", 11, False), state(23)),
        push("refund-30", "申请退款 after completion: the refund family, one cola",
             refund("refund.requested", 50, True, **partial_in), state(30, **partial_out)),
        push("refund-31", "撤回退款 after completion",
             refund("refund.withdrawn", 51, True), state(31)),
        push("refund-32", "拒绝退款 after completion",
             refund("refund.rejected", 51, True, reason="商品无问题"),
             state(32, reason="商品无问题")),
        push("refund-33", "同意退款 after completion: the partial refund",
             refund("refund.agreed", 51, True, **partial_in), state(33, **partial_out)),
    ]  # fmt: skip


def probe_fixtures() -> list[tuple[str, dict[str, Any]]]:
    empty: dict[str, Any] = {"reply": ACK, "events": [], "states": [], "price": None}
    return [
        ("probe-get", {"description": "a URL check by GET", "request": request(b"", {}, "GET"),
                       "expect": empty}),
        ("probe-empty-post", {"description": "a URL check: an empty POST",
                              "request": request(b"", {}), "expect": empty}),
    ]  # fmt: skip


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for old in FOLDER.glob("*.json"):
        old.unlink()
    config = {
        "public_base_url": "https://bridge.example.com",
        "settings": dict(FIXTURE_SETTINGS),
        "stores": {store: dict(binding) for store, binding in FIXTURE_STORES.items()},
    }
    written = [
        ("config", config), *order_fixtures(), *kitchen_fixtures(), *rider_fixtures(),
        *refund_fixtures(), *probe_fixtures(),
    ]  # fmt: skip
    for name, content in written:
        text = json.dumps(content, ensure_ascii=False, indent=2) + "\n"
        (FOLDER / f"{name}.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(written)} files to {FOLDER}")


if __name__ == "__main__":
    main()

"""Write the own_pos plugin's fixtures: ``waimai_bridge_own_pos/fixtures/``.

    python plugins/own_pos/make_own_pos_fixtures.py

Each push fixture is a raw request, signed with the fixture secret at a fixed time and
carrying ``received_at_ms`` a few seconds later (inside the replay window, so a harness can
replay it), and what the plugin must make of it. Each scenario (``scenarios/``) is the
pushes of one order, each signed when its change happens and received 1.25 s later, and
the order the shared state machine folds them into. The expected values are written here by hand
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


def request(
    body: bytes, headers: dict[str, str], method: str = "POST", received_at_ms: int = RECEIVED_MS
) -> dict[str, Any]:
    return {
        "method": method,
        "kind": None,
        "query": [],
        "headers": {name.lower(): value for name, value in headers.items()},
        "body": body.decode("utf-8"),
        "received_at_ms": received_at_ms,
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


class Steps:
    """The pushes of one scenario order. The POS signs each push when its change happens
    (``event_time_ms``, in seconds) and the bridge receives it 1.25 s later: every step
    carries its own ``received_at_ms``, which the harness hands to ``parse_event``, so each
    one is inside the replay window as a live push would be."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id

    def _step(self, message: dict[str, Any]) -> dict[str, Any]:
        signed_s = message["event_time_ms"] // 1000
        body, headers = signed_push(message, secret=SECRET, timestamp_s=signed_s)
        return {"request": request(body, headers, received_at_ms=signed_s * 1000 + 1_250)}

    def created(self, at: int) -> dict[str, Any]:
        """下单 at minute ``at``: the default order, user paid 3,700 fen."""
        return self._step(examples.new_order(self.order_id, STORE_CODE, minute(at)))

    def event(self, event: str, at: int) -> dict[str, Any]:
        """An event without extra fields (accepted, kitchen.*, rider.*, completed)."""
        return self._step(examples.message(event, self.order_id, STORE_CODE, minute(at)))

    def cancelled(self, at: int, *, accepted: bool) -> dict[str, Any]:
        """订单取消, before (14) or after (17) the store accepted the order."""
        message = examples.cancelled(
            self.order_id, STORE_CODE, minute(at), order_accepted=accepted, reason="顾客不要了"
        )
        return self._step(message)

    def refund(self, event: str, at: int, *, completed: bool, cola: bool = False) -> dict[str, Any]:
        """A ``refund.*`` push: of one cola (400 fen, partial) or of the whole order with
        no amount stated."""
        money: dict[str, Any] = {}
        if cola:
            money = {"partial": True, "amount_fen": 400,
                     "lines": (("SKU-2002-330", "可乐-330ml", 1, 400),)}  # fmt: skip
        message = examples.refund(
            event, self.order_id, STORE_CODE, minute(at), order_completed=completed, **money
        )
        return self._step(message)


FULFILMENT = (
    ("order.accepted", 1), ("kitchen.accept", 2), ("kitchen.start_preparing", 5),
    ("kitchen.mark_ready", 12), ("rider.awaiting_pickup", 15), ("rider.at_store", 18),
    ("rider.delivering", 22), ("rider.delivered", 35), ("order.completed", 40),
)  # fmt: skip
"""A whole lifecycle after 下单: each event and its minute."""


def scenario_fixtures() -> list[tuple[str, dict[str, Any]]]:
    """Orders through the shared state machine, and the order SPEC §5 folds them into
    (written from the SPEC's table; the order's user paid is 3,700 fen).

    The accept hold decides whether an order is *stored*, not its folded state, and a
    scenario cannot expect "never stored": the cancel scenarios give the folded state."""
    scenarios: list[tuple[str, dict[str, Any]]] = []

    def add(slug: str, description: str, steps: list[dict[str, Any]],
            expect: dict[str, Any]) -> None:  # fmt: skip
        fixture = {"description": description, "steps": steps, "expect": expect}
        scenarios.append((f"scenarios/{slug}", fixture))

    s = Steps("OWN-20240520-0101")
    add("completed", "created, accepted, the three kitchen steps, the rider, completed",
        [s.created(0), *(s.event(event, at) for event, at in FULFILMENT)],
        {"state": "completed", "rider_state": "delivered", "saved_state": None,
         "platform_state": 18, "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("OWN-20240520-0102")
    add("kitchen_preparing", "accepted and in the kitchen: preparing, no rider yet",
        [s.created(0), s.event("order.accepted", 1), s.event("kitchen.accept", 2),
         s.event("kitchen.start_preparing", 5)],
        {"state": "preparing", "rider_state": None, "saved_state": None,
         "platform_state": 12, "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("OWN-20240520-0103")
    add("cancelled_before_acceptance",
        "cancelled before the store accepted (14): the pipeline never stores it (no "
        "acceptance); folded: refunded, the payment back",
        [s.created(0), s.cancelled(1, accepted=False)],
        {"state": "refunded", "rider_state": None, "platform_state": 14,
         "refunded_amount_fen": 3700})  # fmt: skip

    s = Steps("OWN-20240520-0104")
    add("cancelled_by_store",
        "accepted, then cancelled by the store (17): refunded once the accept hold is over",
        [s.created(0), s.event("order.accepted", 1), s.event("kitchen.accept", 2),
         s.cancelled(3, accepted=True)],
        {"state": "refunded", "rider_state": None, "platform_state": 17,
         "refunded_amount_fen": 3700})  # fmt: skip

    s = Steps("OWN-20240520-0105")
    add("partial_refund_after_completion",
        "completed, then one cola refunded (30, 33 partial): partially_refunded",
        [s.created(0), *(s.event(event, at) for event, at in FULFILMENT),
         s.refund("refund.requested", 50, completed=True, cola=True),
         s.refund("refund.agreed", 51, completed=True, cola=True)],
        {"state": "partially_refunded", "rider_state": "delivered", "saved_state": None,
         "platform_state": 33, "refunded_amount_fen": 400})  # fmt: skip

    s = Steps("OWN-20240520-0106")
    add("cancel_requested",
        "a full cancel requested in the kitchen (20): refunding, accepted remembered",
        [s.created(0), s.event("order.accepted", 1), s.event("kitchen.accept", 2),
         s.refund("refund.requested", 4, completed=False)],
        {"state": "refunding", "saved_state": "accepted", "platform_state": 20,
         "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("OWN-20240520-0107")
    add("cancel_withdrawn",
        "a full cancel requested, the kitchen starts meanwhile, the request withdrawn (21): "
        "the remembered state advanced to preparing",
        [s.created(0), s.event("order.accepted", 1), s.event("kitchen.accept", 2),
         s.refund("refund.requested", 4, completed=False),
         s.event("kitchen.start_preparing", 5),
         s.refund("refund.withdrawn", 6, completed=False)],
        {"state": "preparing", "saved_state": None, "platform_state": 21,
         "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("OWN-20240520-0108")
    add("cancel_rejected",
        "a full cancel requested, the rider waits meanwhile, the request rejected (22): ready, "
        "the rider awaiting pickup",
        [s.created(0), s.event("order.accepted", 1), s.event("kitchen.accept", 2),
         s.event("kitchen.start_preparing", 5),
         s.refund("refund.requested", 10, completed=False),
         s.event("rider.awaiting_pickup", 15),
         s.refund("refund.rejected", 16, completed=False)],
        {"state": "ready", "rider_state": "awaiting_pickup", "saved_state": None,
         "platform_state": 22, "refunded_amount_fen": 0})  # fmt: skip

    s = Steps("OWN-20240520-0109")
    add("cancel_agreed",
        "a full cancel requested and agreed (23) with no amount stated: refunded, the "
        "3,700 fen paid back",
        [s.created(0), s.event("order.accepted", 1), s.event("kitchen.accept", 2),
         s.refund("refund.requested", 4, completed=False),
         s.refund("refund.agreed", 6, completed=False)],
        {"state": "refunded", "saved_state": None, "platform_state": 23,
         "refunded_amount_fen": 3700})  # fmt: skip
    return scenarios


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for old in FOLDER.rglob("*.json"):
        old.unlink()
    config = {
        "public_base_url": "https://bridge.example.com",
        "settings": dict(FIXTURE_SETTINGS),
        "stores": {store: dict(binding) for store, binding in FIXTURE_STORES.items()},
    }
    written = [
        ("config", config), *order_fixtures(), *kitchen_fixtures(), *rider_fixtures(),
        *refund_fixtures(), *probe_fixtures(), *scenario_fixtures(),
    ]  # fmt: skip
    for name, content in written:
        text = json.dumps(content, ensure_ascii=False, indent=2) + "\n"
        (FOLDER / f"{name}.json").parent.mkdir(exist_ok=True)
        (FOLDER / f"{name}.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(written)} files to {FOLDER}")


if __name__ == "__main__":
    main()

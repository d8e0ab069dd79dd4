"""own_pos end to end: signed POS pushes over real HTTP into a running ``waimai-bridge
serve`` (embedded: SQLite and the in-process worker), the own channel's lifecycles — the
kitchen steps included — read back from the API, and an own order listed beside an Eleme
order by the same ``/api/v1/orders``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from waimai_bridge_eleme import examples as eleme_examples
from waimai_bridge_eleme.testing import push_body as eleme_push_body
from waimai_bridge_own_pos import examples
from waimai_bridge_own_pos.testing import push_body, signed_push

from tests import api
from tests.processes import running_serve, wait_until

SECRET = "own-pos-e2e-secret"
ELEME_SECRET = "eleme-e2e-secret"
ELEME_APP_ID = 58137347
ELEME_SHOP = 160012345
TOKEN = "api-token-own-pos"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0_MS = 1_716_181_200_000  # the POS's times of the changes; the signatures use the clock
USER_PAID = 3700  # examples.new_order's default order
COLA = (("SKU-2002-330", "可乐-330ml", 1, 400),)

CONFIG = f"""
[bridge]
database_url = "sqlite:///{{folder}}/own_pos.sqlite3"
public_base_url = "https://bridge.example.com"
accept_hold_seconds = 1
api_tokens = ["{TOKEN}"]

[platforms.own_pos]
secret = "{SECRET}"
max_skew_seconds = 60

[platforms.eleme]
app_key = "e2e-app-key"
app_secret = "{ELEME_SECRET}"
app_id = {ELEME_APP_ID}

[stores.S001]
name = "Store 1"
own_pos = {{ pos_store_code = "POS-001" }}
eleme = {{ shop_id = {ELEME_SHOP}, token = "shop-token" }}

[stores.S002]
name = "Store 2"
own_pos = {{}}
"""


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[str]:
    """The base URL of a running embedded ``waimai-bridge serve`` configured for own_pos
    and Eleme."""
    with running_serve(tmp_path, CONFIG.replace("{folder}", str(tmp_path))) as base:
        yield base


def minute(n: int) -> int:
    return T0_MS + n * 60_000


def post(base: str, message: dict[str, Any], *, timestamp_s: int | None = None) -> httpx.Response:
    """POST ``message`` signed now (or at ``timestamp_s``), as the POS does."""
    body, headers = signed_push(message, secret=SECRET, timestamp_s=timestamp_s)
    return httpx.post(f"{base}/webhooks/own_pos", content=body, headers=headers, timeout=10)


def send(base: str, *messages: dict[str, Any]) -> None:
    for message in messages:
        answer = post(base, message)
        assert (answer.status_code, answer.json()) == (200, {"ok": True}), answer.text


def event(name: str, order: str, at: int, **fields: Any) -> dict[str, Any]:
    return examples.message(name, order, "POS-001", minute(at), **fields)


def created_and_accepted(order: str, store_code: str = "POS-001") -> list[dict[str, Any]]:
    return [
        examples.new_order(order, store_code, minute(0)),
        examples.message("order.accepted", order, store_code, minute(1)),
    ]


def platform_order(base: str, order: str) -> httpx.Response:
    return api.platform_order(base, "own_pos", order, AUTH)


def order_view(base: str, order: str) -> dict[str, Any] | None:
    return api.order_view(base, "own_pos", order, AUTH)


def outcome(base: str, order: str) -> tuple[Any, ...] | None:
    return api.outcome(order_view(base, order))


def reaches(base: str, order: str, expected: tuple[Any, ...], what: str) -> None:
    """Wait until the order shows ``(state, rider_state, saved_state, refunded_amount)``."""

    def there() -> bool:
        return outcome(base, order) == expected

    try:
        wait_until(there, 30, f"{order}: {what}")
    finally:
        assert outcome(base, order) == expected, what


def stored(base: str, order: str) -> dict[str, Any]:
    view: dict[str, Any] = wait_until(lambda: order_view(base, order), 30, f"{order} stored")
    return view


def test_an_own_order_goes_through_the_kitchen_to_completion(bridge: str) -> None:
    order = "OWN-KITCHEN"
    send(bridge, *created_and_accepted(order))
    view = stored(bridge, order)
    assert (view["platform"], view["store_id"], view["state"]) == ("own_pos", "S001", "paid")
    assert {key: value for key, value in view["price"].items() if key != "items"} == {
        "original_amount": 4500, "packaging_fee": 200, "delivery_fee": 500,
        "merchant_discount": 800, "platform_discount": 0, "user_paid": 3700,
        "commission": 0, "merchant_income": 3700,
    }  # fmt: skip
    assert [(i["sku_code"], i["quantity"], i["unit_paid"]) for i in view["items"]] == [
        ("SKU-1001", 1, 2800), ("SKU-2002-330", 2, 400),
    ]  # fmt: skip
    steps = [
        ("kitchen.accept", "accepted", None),
        ("kitchen.start_preparing", "preparing", None),
        ("kitchen.mark_ready", "ready", None),
        ("rider.awaiting_pickup", "ready", "awaiting_pickup"),
        ("rider.at_store", "ready", "at_store"),
        ("rider.delivering", "delivering", "delivering"),
        ("rider.delivered", "delivering", "delivered"),
        ("order.completed", "completed", "delivered"),
    ]
    for at, (name, state, rider) in enumerate(steps, start=2):
        send(bridge, event(name, order, at))
        reaches(bridge, order, (state, rider, None, 0), f"{state} after {name}")
    view = stored(bridge, order)
    assert view["platform_state"] == {"code": 18, "name": "completed"}
    kitchen = [e["kitchen_step"] for e in view["events"] if e["kitchen_step"] is not None]
    assert kitchen == ["accepted", "preparing", "ready"]


def test_cancels_before_acceptance_or_within_the_hold_are_never_stored(bridge: str) -> None:
    send(
        bridge,
        examples.new_order("OWN-UNACCEPTED", "POS-001", minute(0)),
        examples.cancelled("OWN-UNACCEPTED", "POS-001", minute(1), order_accepted=False),
        *created_and_accepted("OWN-WITHIN-HOLD"),
        examples.cancelled("OWN-WITHIN-HOLD", "POS-001", minute(2), order_accepted=True),
        *created_and_accepted("OWN-CONTROL"),
    )
    stored(bridge, "OWN-CONTROL")
    for order, code in (("OWN-UNACCEPTED", 14), ("OWN-WITHIN-HOLD", 17)):
        view = platform_order(bridge, order).json()
        assert (view["stored"], view["order_id"], view["state"]["code"]) == (False, None, code)
    listed = httpx.get(f"{bridge}/api/v1/orders", params={"platform": "own_pos"}, headers=AUTH)
    assert [item["platform_order_id"] for item in listed.json()["items"]] == ["OWN-CONTROL"]


def test_a_partial_refund_after_completion(bridge: str) -> None:
    order = "OWN-REFUND"
    send(bridge, *created_and_accepted(order))
    stored(bridge, order)
    send(bridge, event("order.completed", order, 30))
    reaches(bridge, order, ("completed", None, None, 0), "completed")
    requested = examples.refund(
        "refund.requested", order, "POS-001", minute(40), order_completed=True,
        partial=True, amount_fen=400, lines=COLA, reason="少送了一罐可乐",
    )  # fmt: skip
    send(bridge, requested)
    reaches(bridge, order, ("refunding", None, "completed", 0), "refunding, completion kept")
    agreed = examples.refund(
        "refund.agreed", order, "POS-001", minute(45), order_completed=True,
        partial=True, amount_fen=400, lines=COLA,
    )  # fmt: skip
    send(bridge, agreed, agreed)  # a redelivery, signed afresh, changes nothing
    reaches(bridge, order, ("partially_refunded", None, None, 400), "partially refunded")
    codes = [e["state"]["code"] for e in stored(bridge, order)["events"] if e["state"]]
    assert codes == [10, 12, 18, 30, 33]


def test_the_cancel_family_before_completion_and_a_cancel_after_the_hold(bridge: str) -> None:
    send(bridge, *created_and_accepted("OWN-CANCEL-REJECTED"),
         *created_and_accepted("OWN-CANCELLED-LATE"))  # fmt: skip
    order = "OWN-CANCEL-REJECTED"
    stored(bridge, order)
    send(bridge, event("kitchen.start_preparing", order, 3))
    reaches(bridge, order, ("preparing", None, None, 0), "preparing")
    send(bridge, examples.refund("refund.requested", order, "POS-001", minute(4),
                                 order_completed=False, amount_fen=USER_PAID))  # fmt: skip
    reaches(bridge, order, ("refunding", None, "preparing", 0), "cancel requested")
    send(bridge, event("kitchen.mark_ready", order, 5))
    reaches(bridge, order, ("refunding", None, "ready", 0), "kitchen advances the saved state")
    send(bridge, event("refund.rejected", order, 6, order_completed=False))
    reaches(bridge, order, ("ready", None, None, 0), "cancel rejected: back to ready")
    codes = [e["state"]["code"] for e in stored(bridge, order)["events"] if e["state"]]
    assert codes == [10, 12, 20, 22]

    late = "OWN-CANCELLED-LATE"
    stored(bridge, late)
    send(bridge, examples.cancelled(late, "POS-001", minute(9), order_accepted=True))
    reaches(bridge, late, ("refunded", None, None, USER_PAID), "store cancel after the hold")


def test_bad_pushes_are_refused_and_nothing_is_written(bridge: str) -> None:
    good = examples.new_order("OWN-REFUSED", "POS-001", minute(0))
    body, headers = signed_push(good, secret=SECRET)
    tampered = body.replace(b'"user_paid_fen":3700', b'"user_paid_fen":3600')
    assert tampered != body
    floats = {**good, "order": {**good["order"], "user_paid_fen": 37.0}}
    cases = [
        (tampered, headers, 401, "does not verify"),
        (body, {**headers, "X-Waimai-Signature": "0" * 64}, 401, "does not verify"),
        (*signed_push(good, secret="another-secret"), 401, "does not verify"),
        (*signed_push(good, secret=SECRET, timestamp_s=int(headers["X-Waimai-Timestamp"]) - 600),
         401, "outside the 60 s replay window"),
        (*signed_push(good, secret=SECRET, timestamp_s=int(headers["X-Waimai-Timestamp"]) + 600),
         401, "ahead of the bridge's clock"),
        (*signed_push({**good, "store_code": "POS-404"}, secret=SECRET), 400, "'POS-404'"),
        (*signed_push({**good, "store_code": "S001"}, secret=SECRET), 400, "'S001'"),
        (*signed_push(floats, secret=SECRET), 400, "order.user_paid_fen is 37.0"),
        (push_body(good), {}, 401, "no X-Waimai-Timestamp"),
    ]  # fmt: skip
    for content, sent_headers, status, problem in cases:
        answer = httpx.post(f"{bridge}/webhooks/own_pos", content=content, headers=sent_headers)
        assert answer.status_code == status, answer.text
        assert problem in answer.json()["error"]
        assert SECRET not in answer.text
    assert platform_order(bridge, "OWN-REFUSED").status_code == 404
    assert httpx.get(f"{bridge}/api/v1/orders", headers=AUTH).json()["items"] == []
    for probe in (
        httpx.get(f"{bridge}/webhooks/own_pos"),
        httpx.post(f"{bridge}/webhooks/own_pos", content=b""),
    ):
        assert (probe.status_code, probe.json()) == (200, {"ok": True})


def test_own_and_eleme_orders_share_one_api_and_one_state_machine(bridge: str) -> None:
    send(bridge, *created_and_accepted("OWN-MIXED", store_code="S002"))
    for push_type, message in (
        (10, eleme_examples.new_order("3084512398765432101", ELEME_SHOP)),
        (12, eleme_examples.status("3084512398765432101", ELEME_SHOP, "valid", T0_MS // 1000)),
    ):
        body = eleme_push_body(
            push_type, message, app_id=ELEME_APP_ID, shop_id=ELEME_SHOP, secret=ELEME_SECRET
        )
        answer = httpx.post(f"{bridge}/webhooks/eleme", content=body)
        assert answer.status_code == 200, answer.text

    def listed() -> list[tuple[str, str, str, str]] | None:
        items = httpx.get(f"{bridge}/api/v1/orders", headers=AUTH).json()["items"]
        rows = sorted((i["platform"], i["platform_order_id"], i["store_id"], i["state"])
                      for i in items)  # fmt: skip
        return rows if len(rows) == 2 else None

    assert wait_until(listed, 30, "both orders listed") == [
        ("eleme", "3084512398765432101", "S001", "paid"),
        ("own_pos", "OWN-MIXED", "S002", "paid"),
    ]
    send(bridge, examples.message("kitchen.start_preparing", "OWN-MIXED", "S002", minute(2)))
    reaches(bridge, "OWN-MIXED", ("preparing", None, None, 0), "preparing")
    own = httpx.get(f"{bridge}/api/v1/orders", params={"platform": "own_pos"}, headers=AUTH)
    assert [(i["platform_order_id"], i["state"]) for i in own.json()["items"]] == [
        ("OWN-MIXED", "preparing")
    ]

"""Eleme end to end: signed pushes over real HTTP into a running ``waimai-bridge serve``
(embedded: SQLite and the in-process worker), every lifecycle of SPEC §5 that Eleme
produces, read back from the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from waimai_bridge_eleme import examples
from waimai_bridge_eleme.testing import push_body

from tests import api
from tests.processes import running_serve, wait_until

SECRET = "eleme-e2e-secret"
APP_ID = 58137347
SHOP = 160012345
TOKEN = "eleme-e2e-api-token-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0_S = 1_716_181_200
USER_PAID = 3500  # examples.new_order's default order

CONFIG = f"""
[bridge]
database_url = "sqlite:///{{folder}}/eleme.sqlite3"
public_base_url = "https://bridge.example.com"
accept_hold_seconds = 1
api_tokens = ["{TOKEN}"]

[platforms.eleme]
app_key = "e2e-app-key"
app_secret = "{SECRET}"
app_id = {APP_ID}

[stores.S001]
name = "Store 1"
eleme = {{ shop_id = {SHOP}, token = "shop-token" }}
"""

STATUS = {12: "valid", 14: "invalid", 15: "invalid", 17: "invalid", 18: "settled"}
REFUND_STATUS = {20: "applied", 21: "noRefund", 22: "rejected", 23: "successful",
                 30: "applied", 31: "noRefund", 32: "rejected", 33: "successful"}  # fmt: skip
DELIVERY = {53: "tobeFetched", 54: "arrived", 55: "delivering", 56: "completed"}
PARTIAL_LINE = ("可乐-330ml", 1, 500)


def message(order: str, code: str, minute: int) -> tuple[int, dict[str, Any]]:
    """The push type and message of ``code`` ("18", or "23p" for a partial one)."""
    push_type, partial = int(code.rstrip("p")), code.endswith("p")
    seconds = T0_S + minute * 60
    if push_type == 10:
        return push_type, examples.new_order(order, SHOP)
    if push_type in STATUS:
        return push_type, examples.status(order, SHOP, STATUS[push_type], seconds)
    if push_type in DELIVERY:
        return push_type, examples.delivery(order, SHOP, DELIVERY[push_type], seconds * 1000)
    lines = (PARTIAL_LINE,) if partial else ()
    total = None if partial else USER_PAID
    return push_type, examples.refund(
        order, SHOP, REFUND_STATUS[push_type], seconds, partial_lines=lines, total_fen=total
    )


@dataclass(frozen=True)
class Lifecycle:
    """Pushes sent within the accept hold, pushes sent once it is over, and the outcome:
    ``state`` None means the order must never be stored."""

    within_hold: tuple[str, ...]
    after_hold: tuple[str, ...]
    state: str | None
    rider_state: str | None = None
    saved_state: str | None = None
    refunded: int = 0


LIFECYCLES = {
    "held-then-invalidated": Lifecycle(("10", "12", "17"), (), None),
    "cancelled-unaccepted": Lifecycle(("10", "14"), (), None),
    "completed": Lifecycle(("10", "12"), ("53", "54", "55", "56", "18"), "completed", "delivered"),
    "cancel-withdrawn": Lifecycle(("10", "12"), ("20", "53", "21"), "ready", "awaiting_pickup"),
    "cancel-rejected": Lifecycle(("10", "12"), ("20", "22"), "paid"),
    "cancel-agreed": Lifecycle(("10", "12"), ("20", "23"), "refunded", refunded=USER_PAID),
    "cancel-partial": Lifecycle(
        ("10", "12"), ("20p", "23p", "55", "56", "18"), "partially_refunded", "delivered",
        refunded=500,
    ),
    "cancel-pending": Lifecycle(
        ("10", "12"), ("55", "20"), "refunding", "delivering", saved_state="delivering"
    ),
    "cancel-pending-completed": Lifecycle(
        ("10", "12"), ("20", "56", "18"), "refunding", "delivered", saved_state="completed"
    ),
    "cancel-rejected-after-completion": Lifecycle(
        ("10", "12"), ("20", "18", "22"), "completed"
    ),
    "refund-agreed": Lifecycle(("10", "12"), ("56", "18", "30", "33"), "refunded", "delivered",
                               refunded=USER_PAID),
    "refund-partial": Lifecycle(("10", "12"), ("18", "30p", "33p"), "partially_refunded",
                                refunded=500),
    "refund-rejected": Lifecycle(("10", "12"), ("18", "30", "32"), "completed"),
    "refund-withdrawn": Lifecycle(("10", "12"), ("18", "30p", "31"), "completed"),
    "refund-pending": Lifecycle(("10", "12"), ("18", "30"), "refunding",
                                saved_state="completed"),
    "force-invalidated": Lifecycle(("10", "12"), ("17",), "refunded", refunded=USER_PAID),
    "invalidated": Lifecycle(("10", "12"), ("15",), "refunded", refunded=USER_PAID),
}  # fmt: skip


def bodies(order: str, codes: tuple[str, ...], start: int) -> list[bytes]:
    return [
        push_body(
            *message(order, code, minute), app_id=APP_ID, shop_id=SHOP, secret=SECRET,
            timestamp_ms=(T0_S + minute * 60) * 1000 + 123,
        )
        for minute, code in enumerate(codes, start=start)
    ]  # fmt: skip


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[str]:
    """The base URL of a running embedded ``waimai-bridge serve`` configured for Eleme."""
    with running_serve(tmp_path, CONFIG.replace("{folder}", str(tmp_path))) as base:
        yield base


def post(base: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{base}/webhooks/eleme", content=body, timeout=10)


def platform_order(base: str, order: str) -> httpx.Response:
    return api.platform_order(base, "eleme", order, AUTH)


def order_view(base: str, order: str) -> dict[str, Any] | None:
    return api.order_view(base, "eleme", order, AUTH)


def test_every_eleme_lifecycle_ends_in_its_state(bridge: str) -> None:
    for order, lifecycle in LIFECYCLES.items():
        for body in bodies(order, lifecycle.within_hold, 0):
            answer = post(bridge, body)
            assert (answer.status_code, answer.json()) == (200, {"message": "ok"}), order
    stored = [order for order, lifecycle in LIFECYCLES.items() if lifecycle.state is not None]
    wait_until(
        lambda: all(order_view(bridge, order) is not None for order in stored), 30,
        "every accepted order stored after its hold",
    )  # fmt: skip
    for order, lifecycle in LIFECYCLES.items():
        start = len(lifecycle.within_hold)
        for body in bodies(order, lifecycle.after_hold, start):
            assert post(bridge, body).status_code == 200, order
    expected = {
        order: (lc.state, lc.rider_state, lc.saved_state, lc.refunded)
        for order, lc in LIFECYCLES.items()
        if lc.state is not None
    }

    def actual() -> dict[str, tuple[Any, ...] | None]:
        return {order: api.outcome(order_view(bridge, order)) for order in expected}

    try:
        wait_until(lambda: actual() == expected, 30, "every order in its expected state")
    finally:
        assert actual() == expected
    for order, lifecycle in LIFECYCLES.items():
        if lifecycle.state is None:
            view = platform_order(bridge, order).json()
            assert (view["stored"], view["order_id"]) == (False, None), order
            assert view["state"]["code"] == int(lifecycle.within_hold[-1]), order


def test_an_eleme_order_keeps_elemes_figures(bridge: str) -> None:
    for body in bodies("priced", ("10", "12"), 0):
        assert post(bridge, body).status_code == 200
    view = wait_until(lambda: order_view(bridge, "priced"), 30, "the order stored")
    price = view["price"]
    assert {key: value for key, value in price.items() if key != "items"} == {
        "original_amount": 4500, "packaging_fee": 200, "delivery_fee": 500,
        "merchant_discount": 800, "platform_discount": 200, "user_paid": 3500,
        "commission": 450, "merchant_income": 2750,
    }  # fmt: skip
    assert [(i["sku_code"], i["quantity"], i["unit_original"]) for i in price["items"]] == [
        ("SKU-1001", 1, 2800), ("SKU-2002-330", 2, 500),
    ]  # fmt: skip
    assert {a["kind"] for a in view["anomalies"]} == {"unmapped_sku"}


def test_bad_eleme_pushes_are_refused_and_nothing_is_written(bridge: str) -> None:
    good = bodies("refused", ("10",), 0)[0]
    tampered = good.replace(b"\\u5c11\\u653e\\u8fa3", b"x").replace("少放辣".encode(), b"x")
    assert tampered != good
    wrong_app = push_body(
        *message("refused", "10", 0), app_id=APP_ID + 1, shop_id=SHOP, secret=SECRET
    )
    unknown_shop = push_body(
        *message("refused", "10", 0), app_id=APP_ID, shop_id=SHOP + 1, secret=SECRET
    )
    for body, status, problem in (
        (tampered, 401, "signature"),
        (wrong_app, 401, "appId"),
        (unknown_shop, 400, "shopId"),
        (b"{not json", 400, "JSON"),
    ):
        answer = post(bridge, body)
        assert answer.status_code == status, answer.text
        assert problem in answer.json()["message"]
    assert platform_order(bridge, "refused").status_code == 404
    assert httpx.get(f"{bridge}/api/v1/orders", headers=AUTH).json()["items"] == []
    for probe in (httpx.get(f"{bridge}/webhooks/eleme"), post(bridge, b"")):
        assert (probe.status_code, probe.json()) == (200, {"message": "ok"})

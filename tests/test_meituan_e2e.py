"""Meituan end to end: signed pushes over real HTTP into a running embedded
``waimai-bridge serve`` (SQLite, in-process worker), orders read back from the API.

The three Meituan-specific flows of issue #6 (SPEC §5): a partial cancel before delivery,
two refunds after completion, and a user confirming delivery while a refund is pending.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from waimai_bridge_meituan.examples import logistics, order, partial, refund
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_PUBLIC_BASE_URL,
    FIXTURE_SECRET,
    signed_push,
)

from tests.processes import free_port, running_serve, wait_until
from tests.test_meituan_push import SAMPLE_PRICE
from waimai_bridge.plugins import BLOCK_ENV

TOKEN = "meituan-e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_716_180_000  # seconds
ACK = (200, '{"data":"ok"}')


def config_text(database_url: str, api_base: str) -> str:
    return f"""
[bridge]
database_url = "{database_url}"
broker_url = ""
public_base_url = "{FIXTURE_PUBLIC_BASE_URL}"
shards = 4
accept_hold_seconds = 1
api_tokens = ["{TOKEN}"]
sweep_interval_seconds = 0.2
resend_after_seconds = 2

[platforms.meituan]
app_id = {FIXTURE_APP_ID}
app_secret = "{FIXTURE_SECRET}"
api_base = "{api_base}"

[stores.S001]
name = "Store 1"
meituan = {{ app_poi_code = "STORE-001" }}

[stores.S002]
name = "Store 2"
meituan = {{ app_poi_code = "STORE-002" }}
"""


@dataclass
class Bridge:
    """The running bridge: its base URL and an HTTP client."""

    base: str
    client: httpx.Client

    def push(self, kind: str, params: dict[str, Any], *, method: str = "POST", **sign: Any) -> None:
        """Send one signed push and check Meituan's ACK."""
        answer = self.send(kind, params, method=method, **sign)
        assert (answer.status_code, answer.text) == ACK

    def send(
        self, kind: str, params: dict[str, Any], *, method: str = "POST", **sign: Any
    ) -> httpx.Response:
        """Send one push (signed for the bridge's config unless ``sign`` says otherwise)."""
        sign.setdefault("secret", FIXTURE_SECRET)
        sign.setdefault("app_id", FIXTURE_APP_ID)
        content = signed_push(kind, params, **sign)
        url = f"/webhooks/meituan/{kind}"
        if method == "GET":
            return self.client.get(f"{url}?{content.decode()}")
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return self.client.post(url, content=content, headers=headers)

    def platform_order(self, order_id: str) -> httpx.Response:
        return self.client.get(f"/api/v1/platform-orders/meituan/{order_id}", headers=AUTH)

    def order(self, order_id: str) -> dict[str, Any] | None:
        """The stored order with its events, or None while it is not stored."""
        page = self.client.get(
            "/api/v1/orders",
            params={"platform": "meituan", "platform_order_id": order_id},
            headers=AUTH,
        ).json()
        if not page["items"]:
            return None
        detail: dict[str, Any] = self.client.get(
            f"/api/v1/orders/{page['items'][0]['id']}", headers=AUTH
        ).json()
        return detail

    def settles(
        self,
        order_id: str,
        state: str,
        *,
        saved: str | None = None,
        refunded: int = 0,
        rider: str | None = None,
        events: int | None = None,
    ) -> dict[str, Any]:
        """Wait until the order shows this state, and return it."""
        seen: list[Any] = []

        def reached() -> dict[str, Any] | None:
            found = self.order(order_id)
            if found is None:
                return None
            got = (
                found["state"],
                found["saved_state"],
                found["refunded_amount"],
                found["rider_state"],
                len(found["events"]) if events is not None else None,
            )
            seen[:] = [got]
            return found if got == (state, saved, refunded, rider, events) else None

        try:
            result: dict[str, Any] = wait_until(reached, 20, f"order {order_id} {state}")
        except AssertionError:
            raise AssertionError(f"order {order_id}: last seen {seen}") from None
        return result


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    folder = tmp_path_factory.mktemp("meituan-e2e")
    api_base = f"http://127.0.0.1:{free_port()}/api/v1/"
    text = config_text(f"sqlite:///{folder / 'bridge.sqlite3'}", api_base)
    # only the Meituan plugin: the other platforms are not configured here
    with (
        running_serve(folder, text, **{BLOCK_ENV: "eleme,own_pos"}) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        yield Bridge(base, client)


def rider(order_id: str, status: int, at: int) -> dict[str, Any]:
    return {**logistics(status, at), "order_id": order_id, "wm_order_id_view": order_id}


def accepted(bridge: Bridge, order_id: str) -> None:
    """Paid, then confirmed by the merchant: stored as paid after the accept hold."""
    bridge.push("order_paid", order(2, T0, order_id=order_id, wm_order_id_view=order_id))
    bridge.push("order_confirmed", order(4, T0 + 60, order_id=order_id, wm_order_id_view=order_id))
    stored = bridge.settles(order_id, "paid", events=2)
    assert stored["store_id"] == "S001"
    assert stored["price"] == SAMPLE_PRICE
    assert stored["platform_state"] == {"code": 12, "name": "accepted"}


def completed(order_id: str, at: int) -> dict[str, Any]:
    return order(8, at, order_id=order_id, wm_order_id_view=order_id)


def test_a_partial_cancel_before_delivery_then_completion(bridge: Bridge) -> None:
    oid = "1001"
    accepted(bridge, oid)
    bridge.push("logistics", rider(oid, 10, T0 + 300))
    bridge.settles(oid, "ready", rider="awaiting_pickup")
    bridge.push("partial_refund", partial("part", "R1", order_id=oid, ctime=str(T0 + 400)))
    requested = bridge.settles(oid, "refunding", saved="ready", rider="awaiting_pickup")
    assert requested["platform_state"] == {"code": 30, "name": "refund_requested"}
    # the rider picks the food up while the request is pending: the remembered state moves
    bridge.push("logistics", rider(oid, 20, T0 + 450))
    bridge.settles(oid, "refunding", saved="delivering", rider="delivering")
    bridge.push(
        "partial_refund", partial("agree", "R1", order_id=oid, ctime=str(T0 + 400), res_type="2")
    )
    agreed = bridge.settles(oid, "delivering", refunded=500, rider="delivering")
    [event] = [e for e in agreed["events"] if e["native_code"] == "partial_refund.agree"]
    assert (event["partial"], event["refund_amount"]) == (True, 500)
    bridge.push("logistics", rider(oid, 40, T0 + 900))
    bridge.push("order_completed", completed(oid, T0 + 1000))
    final = bridge.settles(oid, "partially_refunded", refunded=500, rider="delivered", events=8)
    assert final["platform_state"] == {"code": 18, "name": "completed"}
    place = bridge.platform_order(oid).json()
    assert (place["state"]["code"], place["order_state"], place["stored"]) == (18, None, True)


def test_two_refunds_after_completion_the_second_withdrawn(bridge: Bridge) -> None:
    oid = "1002"
    accepted(bridge, oid)
    bridge.push("order_completed", completed(oid, T0 + 1000))
    bridge.settles(oid, "completed")
    bridge.push("partial_refund", partial("part", "R1", order_id=oid, ctime=str(T0 + 2000)))
    bridge.settles(oid, "refunding", saved="completed")
    bridge.push("partial_refund", partial("agree", "R1", order_id=oid, ctime=str(T0 + 2000)))
    bridge.settles(oid, "partially_refunded", refunded=500)
    bridge.push("refund", refund("apply", "R2", order_id=oid, ctime=str(T0 + 3000)), method="GET")
    bridge.settles(oid, "refunding", saved="partially_refunded", refunded=500)
    bridge.push("refund", refund("cancelRefund", "R2", order_id=oid, ctime=str(T0 + 3000)))
    final = bridge.settles(oid, "partially_refunded", refunded=500, events=7)
    assert final["platform_state"] == {"code": 31, "name": "refund_withdrawn"}


@pytest.mark.parametrize(
    ("oid", "answer", "state", "refunded"),
    [("1003", "reject", "completed", 0), ("1004", "agree", "refunded", 3400)],
)
def test_delivery_confirmed_while_a_refund_is_pending(
    bridge: Bridge, oid: str, answer: str, state: str, refunded: int
) -> None:
    accepted(bridge, oid)
    bridge.push("refund", refund("apply", "R9", order_id=oid, ctime=str(T0 + 500)))
    bridge.settles(oid, "refunding", saved="paid")
    bridge.push("order_completed", completed(oid, T0 + 800))
    bridge.settles(oid, "refunding", saved="completed")
    bridge.push("refund", refund(answer, "R9", order_id=oid, ctime=str(T0 + 500)))
    bridge.settles(oid, state, refunded=refunded, events=5)


def test_a_repeated_push_changes_nothing(bridge: Bridge) -> None:
    oid = "1005"
    accepted(bridge, oid)
    for timestamp in (T0 + 61, T0 + 62):  # Meituan signs each redelivery anew
        bridge.push(
            "order_confirmed",
            order(4, T0 + 60, order_id=oid, wm_order_id_view=oid),
            timestamp=timestamp,
        )
    bridge.push("order_cancelled", {"order_id": oid, "reason_code": "2009", "reason": "售完",
                                    "deal_op_type": "2"}, timestamp=T0 + 100)  # fmt: skip
    final = bridge.settles(oid, "refunded", refunded=3400, events=3)
    assert final["platform_state"] == {"code": 17, "name": "force_invalidated"}
    assert final["events"][-1]["reason"] == "2009 售完"


def test_refused_pushes_write_nothing(bridge: Bridge) -> None:
    oid = "1006"
    good = order(2, T0, order_id=oid, wm_order_id_view=oid)
    content = signed_push("order_paid", good, secret=FIXTURE_SECRET, app_id=FIXTURE_APP_ID)
    forged = content.replace(b"total=34.0", b"total=3.4")
    assert forged != content
    refusals = [
        bridge.client.post("/webhooks/meituan/order_paid", content=forged),
        bridge.send("order_paid", good, app_id="9999"),
        bridge.send("order_paid", {**good, "app_poi_code": "STORE-404"}),
        bridge.send("order_paid", good, public_base_url="https://elsewhere.example.com"),
        bridge.send("order_confirmed", good, method="GET", secret="another-secret"),
        bridge.client.post("/webhooks/meituan/order_paid", content=b'{"order_id": 1006}'),
    ]
    assert [(answer.status_code, answer.json()["error"]["code"]) for answer in refusals] == [
        (401, 703),
        (401, 702),
        (400, 704),
        (401, 703),
        (401, 703),
        (400, 705),
    ]
    assert all(answer.json()["data"] == "ng" for answer in refusals)
    assert FIXTURE_SECRET not in "".join(answer.text for answer in refusals)
    # a push of another order after them is processed: the refused ones would be too by now
    accepted(bridge, "1007")
    assert bridge.platform_order(oid).status_code == 404
    assert bridge.order(oid) is None
    page = bridge.client.get("/api/v1/orders", params={"platform": "meituan"}, headers=AUTH)
    assert "1007" in {item["platform_order_id"] for item in page.json()["items"]}
    assert oid not in {item["platform_order_id"] for item in page.json()["items"]}


def test_probes_and_unknown_kinds(bridge: Bridge) -> None:
    for kind in ("order_paid", "refund", "partial_refund", "logistics"):
        for answer in (
            bridge.client.post(f"/webhooks/meituan/{kind}", content=b""),
            bridge.client.get(f"/webhooks/meituan/{kind}"),
        ):
            assert (answer.status_code, answer.text) == ACK
    assert bridge.client.post("/webhooks/meituan/order_lost", content=b"").status_code == 404
    assert bridge.client.get("/webhooks/meituan").status_code == 404

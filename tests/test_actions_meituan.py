"""Meituan's answers to cancel and refund requests (SPEC §4.4): one endpoint answers both
families, as the plugin's manifest declares, so ``agree_cancel`` answers the requests
Meituan's refund pushes open; each request is answered once however often it is asked,
and a later request of the same order again. Through the API and the embedded worker,
against the fake Meituan API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from waimai_bridge_meituan.examples import order, partial, refund
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_PUBLIC_BASE_URL,
    FIXTURE_SECRET,
    FakeAnswer,
    FakeMeituan,
    signed_push,
)

from tests.conftest import clear
from tests.processes import wait_until
from waimai_bridge.config import load_config
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.web.app import create_app

API_TOKEN = "api-token-meituan-actions"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
T0 = 1_716_180_000
AGREE = "order/refund/agree"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMeituan]:
    with FakeMeituan() as running:
        yield running


@pytest.fixture(scope="module")
def _client(tmp_path_factory: pytest.TempPathFactory, fake: FakeMeituan) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("meituan-actions")
    path = folder / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{folder / 'b.sqlite3'}", fake.api_base), "utf-8")
    registry = PluginRegistry.discover(blocked=())
    with TestClient(create_app(Bridge(load_config(path, registry), registry))) as client:
        yield client


def config_text(database_url: str, api_base: str) -> str:
    return f"""
[bridge]
database_url = "{database_url}"
public_base_url = "{FIXTURE_PUBLIC_BASE_URL}"
accept_hold_seconds = 0
api_tokens = ["{API_TOKEN}"]
action_retry_seconds = 0.1
sweep_interval_seconds = 0.2
resend_after_seconds = 0.5

[platforms.meituan]
app_id = {FIXTURE_APP_ID}
app_secret = "{FIXTURE_SECRET}"
api_base = "{api_base}"
api_timeout_seconds = 1

[stores.S001]
meituan = {{ app_poi_code = "STORE-001" }}
"""


@pytest.fixture
def client(_client: TestClient, fake: FakeMeituan) -> TestClient:
    bridge: Bridge = _client.app.state.bridge  # type: ignore[attr-defined]
    clear(bridge.database)
    fake.reset()
    return _client


def push(client: TestClient, kind: str, params: dict[str, Any]) -> None:
    body = signed_push(kind, params, secret=FIXTURE_SECRET, app_id=FIXTURE_APP_ID)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    answer = client.post(f"/webhooks/meituan/{kind}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def state_is(client: TestClient, oid: str, state: str) -> int:
    def stored() -> int | None:
        found = client.get("/api/v1/orders", params={"platform_order_id": oid}, headers=AUTH)
        items = found.json()["items"]
        return items[0]["id"] if items and items[0]["state"] == state else None

    order_id: int = wait_until(stored, 10, f"order {oid} {state}")
    return order_id


def ask(client: TestClient, order_id: int, action: str, key: str) -> Any:
    return client.post(
        f"/api/v1/orders/{order_id}/actions",
        json={"action": action, "idempotency_key": key},
        headers=AUTH,
    )


def settled(client: TestClient, action_id: int) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        view: dict[str, Any] = client.get(f"/api/v1/actions/{action_id}", headers=AUTH).json()
        return view if view["status"] != "pending" else None

    result: dict[str, Any] = wait_until(finished, 15, f"action {action_id} finished")
    return result


def accepted(client: TestClient, oid: str) -> int:
    push(client, "order_paid", order(2, T0, order_id=oid, wm_order_id_view=oid))
    push(client, "order_confirmed", order(4, T0 + 60, order_id=oid, wm_order_id_view=oid))
    return state_is(client, oid, "paid")


def test_agree_cancel_answers_a_request_meituan_pushed_as_a_refund(
    client: TestClient, fake: FakeMeituan
) -> None:
    oid = "2001"
    order_id = accepted(client, oid)
    refused = ask(client, order_id, "agree_cancel", "too-early")
    assert refused.status_code == 409
    assert "agree_cancel needs a pending cancel or refund request" in refused.json()["error"]
    push(client, "refund", refund("apply", "R1", order_id=oid, ctime=str(T0 + 100)))
    state_is(client, oid, "refunding")
    first = ask(client, order_id, "agree_cancel", "agree-1")
    assert first.status_code == 202, first.text
    again = ask(client, order_id, "agree_cancel", "agree-2")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert settled(client, first.json()["id"])["status"] == "done"
    [call] = fake.calls_to(AGREE)
    assert call.params["order_id"] == oid


def test_a_second_refund_request_is_answered_again(client: TestClient, fake: FakeMeituan) -> None:
    oid = "2002"
    order_id = accepted(client, oid)
    push(client, "partial_refund", partial("part", "R1", order_id=oid, ctime=str(T0 + 100)))
    state_is(client, oid, "refunding")
    first = settled(client, ask(client, order_id, "agree_refund", "first").json()["id"])
    assert first["status"] == "done"
    push(client, "partial_refund", partial("agree", "R1", order_id=oid, ctime=str(T0 + 100)))
    state_is(client, oid, "paid")
    repeated = ask(client, order_id, "agree_refund", "first-again")
    assert (repeated.status_code, repeated.json()["id"]) == (200, first["id"])
    fake.open_request(oid)  # Meituan allows a second application
    push(client, "refund", refund("apply", "R2", order_id=oid, ctime=str(T0 + 200)))
    state_is(client, oid, "refunding")
    second = ask(client, order_id, "agree_refund", "second")
    assert second.status_code == 202, second.text
    assert settled(client, second.json()["id"])["status"] == "done"
    assert len(fake.calls_to(AGREE)) == 2


def test_a_repeat_meituan_already_did_is_done(client: TestClient, fake: FakeMeituan) -> None:
    oid = "2003"
    order_id = accepted(client, oid)
    push(client, "refund", refund("apply", "R1", order_id=oid, ctime=str(T0 + 100)))
    state_is(client, oid, "refunding")
    # the refund is agreed on the platform, but the answer is a transient error
    fake.script(AGREE, FakeAnswer.after_acting(FakeAnswer.error(700, "系统错误")))
    view = settled(client, ask(client, order_id, "agree_refund", "again").json()["id"])
    assert (view["status"], view["attempts"]) == ("done", 2)
    assert view["result"] == {"code": "808", "message": "退款已同意"}


def test_an_answer_lost_after_sending_is_verified_on_the_order(
    client: TestClient, fake: FakeMeituan
) -> None:
    oid = "2005"
    order_id = accepted(client, oid)
    push(client, "refund", refund("apply", "R1", order_id=oid, ctime=str(T0 + 100)))
    state_is(client, oid, "refunding")
    fake.script(AGREE, FakeAnswer.slow(1.5))  # the client gives up after 1 s: unknown
    view = settled(client, ask(client, order_id, "agree_refund", "slow").json()["id"])
    assert (view["status"], view["attempts"], view["verified"]) == ("done", 1, True)
    assert len(fake.calls_to(AGREE)) == 1

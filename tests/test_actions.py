"""Outbound actions end to end (SPEC §7.3): asked over the API, performed by the embedded
worker through the Eleme plugin against the fake Eleme API, retried, refused, retried by
hand; and the store's guarantee that an attempt whose outcome is unknown is never repeated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from waimai_bridge_eleme import examples
from waimai_bridge_eleme.testing import FakeAnswer, FakeEleme, push_body

from tests.conftest import clear
from tests.processes import wait_until
from waimai_bridge.cli import cli
from waimai_bridge.config import load_config
from waimai_bridge.models import Action, ActionOutcome, ActionResult
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import actions
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import PlatformOrder
from waimai_bridge.web.app import create_app

KEY, SECRET, APP_ID, SHOP, TOKEN = "app-key", "eleme-secret", 58137347, 160012345, "shop-token"
API_TOKEN = "api-token-actions"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
T0_S = 1_716_181_200
CONFIRM_METHOD = "eleme.order.cancelOrderLite"


def config_text(database_url: str, api_base: str) -> str:
    return f"""
[bridge]
database_url = "{database_url}"
accept_hold_seconds = 0
api_tokens = ["{API_TOKEN}"]
action_retry_seconds = 0.1
sweep_interval_seconds = 0.2
resend_after_seconds = 0.5

[platforms.eleme]
app_key = "{KEY}"
app_secret = "{SECRET}"
app_id = {APP_ID}
api_base = "{api_base}"
timeout_seconds = 2

[stores.S001]
eleme = {{ shop_id = {SHOP}, token = "{TOKEN}" }}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEleme]:
    with FakeEleme(app_key=KEY, app_secret=SECRET, tokens={TOKEN}) as running:
        yield running


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory, fake: FakeEleme) -> Path:
    folder = tmp_path_factory.mktemp("actions")
    path = folder / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{folder / 'b.sqlite3'}", fake.api_base), "utf-8")
    return path


@pytest.fixture(scope="module")
def _client(config_path: Path) -> Iterator[TestClient]:
    registry = PluginRegistry.discover(blocked=())
    with TestClient(create_app(Bridge(load_config(config_path, registry), registry))) as client:
        yield client


@pytest.fixture
def client(_client: TestClient, fake: FakeEleme) -> TestClient:
    bridge: Bridge = _client.app.state.bridge  # type: ignore[attr-defined]
    clear(bridge.database)
    fake.reset()
    return _client


def push(client: TestClient, order: str, push_type: int, message: dict[str, Any]) -> None:
    body = push_body(push_type, message, app_id=APP_ID, shop_id=SHOP, secret=SECRET,
                     timestamp_ms=T0_S * 1000 + push_type)  # fmt: skip
    assert client.post("/webhooks/eleme", content=body).status_code == 200


def stored_order(client: TestClient, order: str, *extra: tuple[int, dict[str, Any]]) -> int:
    """An accepted, stored Eleme order (plus ``extra`` pushes); its id."""
    push(client, order, 10, examples.new_order(order, SHOP))
    push(client, order, 12, examples.status(order, SHOP, "valid", T0_S + 1))
    for push_type, message in extra:
        push(client, order, push_type, message)

    def order_id() -> int | None:
        found = client.get(f"/api/v1/platform-orders/eleme/{order}", headers=AUTH)
        return found.json()["order_id"] if found.status_code == 200 else None

    found: int = wait_until(order_id, 10, "the order stored")
    return found


def ask(client: TestClient, order_id: int, action: str, key: str, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/orders/{order_id}/actions",
        json={"action": action, "idempotency_key": key, **extra},
        headers=AUTH,
    )


def settled(client: TestClient, action_id: int) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        view: dict[str, Any] = client.get(f"/api/v1/actions/{action_id}", headers=AUTH).json()
        return view if view["status"] != "pending" else None

    result: dict[str, Any] = wait_until(finished, 15, f"action {action_id} finished")
    return result


def test_transient_failures_are_retried_and_one_call_succeeds(
    client: TestClient, fake: FakeEleme
) -> None:
    order_id = stored_order(client, "A1")
    fake.script(CONFIRM_METHOD, FakeAnswer.http(502), FakeAnswer.http(503))
    asked = ask(client, order_id, "cancel", "key-1", reason="sold_out: 卖完了")
    assert asked.status_code == 202, asked.text
    view = settled(client, asked.json()["id"])
    assert (view["status"], view["attempts"]) == ("done", 3)
    calls = fake.calls_to(CONFIRM_METHOD)
    assert [call.http_status for call in calls] == [502, 503, 200]
    assert all(call.signature_ok for call in calls)
    assert calls[-1].params == {"orderId": "A1", "type": "foodSoldOut", "remark": "卖完了"}
    again = ask(client, order_id, "cancel", "key-1", reason="sold_out: 卖完了")
    assert (again.status_code, again.json()["id"]) == (200, view["id"])
    assert len(fake.calls_to(CONFIRM_METHOD)) == 3


def test_a_final_error_fails_visibly_and_a_human_retries_it(
    client: TestClient, fake: FakeEleme, config_path: Path
) -> None:
    order_id = stored_order(client, "A2")
    fake.script(CONFIRM_METHOD, FakeAnswer.error("BIZ_ORDER_STATUS_ERROR", "订单状态不正确"))
    view = settled(client, ask(client, order_id, "cancel", "key-2").json()["id"])
    assert (view["status"], view["attempts"]) == ("failed", 1)
    assert view["result"] == {"code": "BIZ_ORDER_STATUS_ERROR", "message": "订单状态不正确"}
    listed = CliRunner().invoke(
        cli, ["--config", str(config_path), "actions", "list", "--failed"], env={"COLUMNS": "200"}
    )
    assert listed.exit_code == 0, listed.output
    assert "BIZ_ORDER_STATUS_ERROR" in listed.output
    retried = client.post(f"/api/v1/actions/{view['id']}/retry", headers=AUTH)
    assert retried.status_code == 200, retried.text
    assert settled(client, view["id"])["status"] == "done"
    assert [call.http_status for call in fake.calls_to(CONFIRM_METHOD)] == [200, 200]


def test_exhausted_tries_fail_with_the_last_answer(client: TestClient, fake: FakeEleme) -> None:
    order_id = stored_order(client, "A3")
    fake.script(CONFIRM_METHOD, *[FakeAnswer.error("SERVER_ERROR", "busy")] * 3)
    view = settled(client, ask(client, order_id, "cancel", "key-3").json()["id"])
    assert (view["status"], view["attempts"], view["result"]["code"]) == (
        "failed", 3, "SERVER_ERROR",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("action", "status", "problem", "allowed"),
    [
        ("agree_refund", 409, "agree_refund needs a pending refund request", ["cancel"]),
        ("meal_ready", 422, "does not support 'meal_ready'", ["cancel"]),
    ],
)
def test_an_action_that_makes_no_sense_is_refused_naming_why(
    client: TestClient, fake: FakeEleme, action: str, status: int, problem: str,
    allowed: list[str],
) -> None:  # fmt: skip
    order_id = stored_order(client, "A4")
    answer = ask(client, order_id, action, f"key-{action}")
    assert answer.status_code == status
    assert problem in answer.json()["error"]
    assert answer.json()["allowed"] == allowed
    assert fake.calls == []


def test_a_pending_refund_request_allows_agreeing_to_it(
    client: TestClient, fake: FakeEleme
) -> None:
    order = "A5"
    order_id = stored_order(
        client, order,
        (18, examples.status(order, SHOP, "settled", T0_S + 2)),
        (30, examples.refund(order, SHOP, "applied", T0_S + 3, total_fen=3500)),
    )  # fmt: skip
    wait_until(
        lambda: client.get(f"/api/v1/orders/{order_id}", headers=AUTH).json()["state"]
        == "refunding", 10, "the refund request folded",
    )  # fmt: skip
    assert ask(client, order_id, "agree_cancel", "key-5a").status_code == 409
    view = settled(client, ask(client, order_id, "agree_refund", "key-5").json()["id"])
    assert view["status"] == "done"
    [call] = fake.calls_to("eleme.order.agreeRefundLite")
    assert call.params == {"orderId": order}


def test_a_key_names_one_action(client: TestClient) -> None:
    order_id = stored_order(client, "A6")
    assert ask(client, order_id, "cancel", "key-6").status_code == 202
    conflict = ask(client, order_id, "confirm", "key-6")
    assert conflict.status_code == 409
    assert "key-6" in conflict.json()["error"]


def test_an_order_not_yet_stored_can_be_confirmed(client: TestClient, fake: FakeEleme) -> None:
    push(client, "A7", 10, examples.new_order("A7", SHOP))
    wait_until(
        lambda: client.get("/api/v1/platform-orders/eleme/A7", headers=AUTH).status_code == 200,
        10, "the created order seen",
    )  # fmt: skip
    asked = client.post(
        "/api/v1/platform-orders/eleme/A7/actions",
        json={"action": "confirm", "idempotency_key": "key-7"}, headers=AUTH,
    )  # fmt: skip
    assert asked.status_code == 202, asked.text
    assert settled(client, asked.json()["id"])["status"] == "done"
    assert [c.params for c in fake.calls_to("eleme.order.confirmOrderLite")] == [{"orderId": "A7"}]
    unknown = client.post(
        "/api/v1/platform-orders/eleme/nope/actions",
        json={"action": "confirm", "idempotency_key": "key-8"}, headers=AUTH,
    )  # fmt: skip
    assert unknown.status_code == 404


# --------------------------------------------------------------------------- the store


def test_an_attempt_whose_worker_died_is_never_made_again(database: Database) -> None:
    with database.transaction() as session:
        platform_order = PlatformOrder(
            platform="eleme", platform_order_id="X1", store_id="S001", state_code=12,
            order_state=None, latest_payload={}, price=None, order_id=None,
            hold_started_at_ms=None, discarded=False, created_at_ms=0, updated_at_ms=0,
        )  # fmt: skip
        session.add(platform_order)
        session.flush()
        asked = actions.ask(
            session, key="k", action=Action.CONFIRM, platform_order=platform_order,
            reason=None, attempt_limit=3, now_ms=1_000,
        )  # fmt: skip
        action_id = asked.action.id
    with database.transaction() as session:
        first = actions.claim(session, action_id, now_ms=2_000, in_flight_timeout_ms=60_000)
    assert first.step is actions.Step.CALL
    # the worker dies here; the message comes again, first while the call may still answer
    with database.transaction() as session:
        early = actions.claim(session, action_id, now_ms=30_000, in_flight_timeout_ms=60_000)
        late = actions.claim(session, action_id, now_ms=70_000, in_flight_timeout_ms=60_000)
    assert (early.step, late.step) == (actions.Step.NOTHING, actions.Step.NOTHING)
    with database.transaction() as session:
        row = actions.by_key(session, "k")
        assert row is not None
        assert (row.status, row.attempts, row.result_code) == (
            "failed", 1, actions.UNKNOWN_OUTCOME,
        )  # fmt: skip
        # the dead worker's answer, arriving after all, changes nothing
        done = ActionResult(outcome=ActionOutcome.DONE)
        assert (
            actions.record(
                session, action_id, done, started_ms=2_000, now_ms=80_000, retry_delay_ms=0
            )
            is None
        )

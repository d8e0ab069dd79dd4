"""Outbound actions end to end (SPEC §4.4, §7.3): asked over the API, performed by the
embedded worker through the Eleme plugin against the fake Eleme API, retried, refused,
retried by hand, one per kind however often it is asked; and the store's retry of an
attempt whose worker died."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select
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
from waimai_bridge.store.order_log import lock_orders
from waimai_bridge.store.tables import OutboundAction, PlatformOrder
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
def client(_client: TestClient, fake: FakeEleme) -> Iterator[TestClient]:
    bridge: Bridge = _client.app.state.bridge  # type: ignore[attr-defined]
    clear(bridge.database)
    fake.reset()
    yield _client
    # the app and the fake serve the whole module: an action still in flight would call the
    # fake during the next test, after its reset
    wait_until(lambda: not _pending(bridge.database), 30, "the test's actions settled")


def _pending(database: Database) -> bool:
    with database.transaction() as session:
        return (
            session.scalar(
                select(OutboundAction.id).where(OutboundAction.status == "pending").limit(1)
            )
            is not None
        )


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
    assert (
        client.get(f"/api/v1/actions/{asked.json()['id']}", headers=AUTH).json()["order_id"] is None
    )
    push(client, "A7", 12, examples.status("A7", SHOP, "valid", T0_S + 1))  # the platform's word
    order_id = wait_until(
        lambda: client.get("/api/v1/platform-orders/eleme/A7", headers=AUTH).json()["order_id"],
        10, "the order stored",
    )  # fmt: skip
    action = client.get(f"/api/v1/actions/{asked.json()['id']}", headers=AUTH).json()
    assert action["order_id"] == order_id  # the action now names the order it acted on
    unknown = client.post(
        "/api/v1/platform-orders/eleme/nope/actions",
        json={"action": "confirm", "idempotency_key": "key-8"}, headers=AUTH,
    )  # fmt: skip
    assert unknown.status_code == 404


def refund_requested(client: TestClient, order: str) -> int:
    """A completed Eleme order with a pending refund request; its id."""
    order_id = stored_order(
        client, order,
        (18, examples.status(order, SHOP, "settled", T0_S + 2)),
        (30, examples.refund(order, SHOP, "applied", T0_S + 3, total_fen=3500)),
    )  # fmt: skip
    state_is(client, order_id, "refunding")
    return order_id


def state_is(client: TestClient, order_id: int, state: str) -> None:
    wait_until(
        lambda: client.get(f"/api/v1/orders/{order_id}", headers=AUTH).json()["state"] == state,
        10, f"order {order_id} {state}",
    )  # fmt: skip


AGREE_METHOD = "eleme.order.agreeRefundLite"


def test_a_second_press_with_another_key_returns_the_first_action(
    client: TestClient, fake: FakeEleme
) -> None:
    order_id = refund_requested(client, "B1")
    first = ask(client, order_id, "agree_refund", "press-1")
    again = ask(client, order_id, "agree_refund", "press-2")
    assert (first.status_code, again.status_code) == (202, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    assert settled(client, first.json()["id"])["status"] == "done"
    later = ask(client, order_id, "agree_refund", "press-3")
    assert (later.status_code, later.json()["id"]) == (200, first.json()["id"])
    assert len(fake.calls_to(AGREE_METHOD)) == 1


def test_a_second_request_of_the_order_is_answered_again(
    client: TestClient, fake: FakeEleme
) -> None:
    order = "B2"
    order_id = refund_requested(client, order)
    first = settled(client, ask(client, order_id, "agree_refund", "req-1").json()["id"])
    assert first["status"] == "done"
    repeated = ask(client, order_id, "agree_refund", "req-1-again")
    assert (repeated.status_code, repeated.json()["id"]) == (200, first["id"])
    partly = examples.refund(
        order, SHOP, "successful", T0_S + 4, partial_lines=[("可乐-330ml", 1, 500)]
    )
    push(client, order, 33, partly)
    state_is(client, order_id, "partially_refunded")
    fake.open_request(order)  # the user applies again: the platform has a new request
    push(client, order, 30, examples.refund(order, SHOP, "applied", T0_S + 5, total_fen=3000))
    state_is(client, order_id, "refunding")
    second = ask(client, order_id, "agree_refund", "req-2")
    assert second.status_code == 202, second.text
    assert second.json()["id"] != first["id"]
    assert settled(client, second.json()["id"])["status"] == "done"
    assert len(fake.calls_to(AGREE_METHOD)) == 2


def test_a_failed_action_does_not_block_a_new_one(client: TestClient, fake: FakeEleme) -> None:
    order_id = stored_order(client, "B3")
    fake.script(CONFIRM_METHOD, FakeAnswer.error("BIZ_ORDER_STATUS_ERROR", "订单状态不正确"))
    failed = settled(client, ask(client, order_id, "cancel", "try-1").json()["id"])
    assert failed["status"] == "failed"
    again = ask(client, order_id, "cancel", "try-2")
    assert again.status_code == 202, again.text
    assert again.json()["id"] != failed["id"]
    assert settled(client, again.json()["id"])["status"] == "done"


def test_a_call_that_timed_out_after_the_platform_acted_ends_done(
    client: TestClient, fake: FakeEleme
) -> None:
    order_id = stored_order(client, "B4")
    fake.script(CONFIRM_METHOD, FakeAnswer.slow(2.5))  # the client gives up after 2 s
    view = settled(client, ask(client, order_id, "cancel", "slow-1").json()["id"])
    # the answer was lost after the request went out: the order on Eleme settles it
    assert (view["status"], view["attempts"], view["verified"]) == ("done", 1, True)
    assert view["result"] == {
        "code": "invalid",
        "message": "the order's status on Eleme is 'invalid'",
    }
    (only,) = fake.calls_to(CONFIRM_METHOD)
    assert only.answer is not None
    assert only.answer["error"] is None
    assert len(fake.calls_to("eleme.order.getOrder")) == 1


# --------------------------------------------------------------------------- the store


def _pending_action(database: Database, attempt_limit: int) -> int:
    with database.transaction() as session:
        platform_order = PlatformOrder(
            platform="eleme", platform_order_id="X1", store_id="S001", state_code=12,
            order_state=None, price=None, order_id=None,
            hold_started_at_ms=None, discarded=False, created_at_ms=0, updated_at_ms=0,
        )  # fmt: skip
        session.add(platform_order)
        session.flush()
        asked = actions.ask(
            session, key="k", action=Action.CONFIRM,
            platform_order=lock_orders(session, [("eleme", "X1")])["eleme", "X1"],
            request_key=None, reason=None, attempt_limit=attempt_limit, now_ms=1_000,
        )  # fmt: skip
        return asked.action.id


def test_an_attempt_whose_worker_died_is_made_again_while_tries_are_left(
    database: Database,
) -> None:
    action_id = _pending_action(database, attempt_limit=2)
    with database.transaction() as session:
        first = actions.claim(session, action_id, now_ms=2_000, in_flight_timeout_ms=60_000)
    assert first.step is actions.Step.CALL
    # the worker dies here; the message comes again, first while the call may still answer
    with database.transaction() as session:
        early = actions.claim(session, action_id, now_ms=30_000, in_flight_timeout_ms=60_000)
        late = actions.claim(session, action_id, now_ms=70_000, in_flight_timeout_ms=60_000)
    assert early.step is actions.Step.NOTHING
    assert (late.step, late.at_ms) == (actions.Step.CALL, 70_000)
    assert late.request is not None
    assert late.request.attempt == 2
    done = ActionResult(outcome=ActionOutcome.DONE)
    with database.transaction() as session:
        # the dead worker's answer, arriving after all, changes nothing
        stale = actions.record(
            session, action_id, done, started_ms=2_000, now_ms=71_000, retry_delay_ms=0
        )
        assert stale is None
        row = actions.record(
            session, action_id, done, started_ms=70_000, now_ms=72_000, retry_delay_ms=0
        )
        assert row is not None
        assert (row.status, row.attempts) == ("done", 2)


def test_an_attempt_whose_worker_died_with_no_tries_left_fails_as_unknown(
    database: Database,
) -> None:
    action_id = _pending_action(database, attempt_limit=1)
    with database.transaction() as session:
        assert actions.claim(session, action_id, now_ms=2_000, in_flight_timeout_ms=60_000).step
    with database.transaction() as session:
        late = actions.claim(session, action_id, now_ms=70_000, in_flight_timeout_ms=60_000)
    assert late.step is actions.Step.NOTHING
    with database.transaction() as session:
        row = actions.by_key(session, "k")
        assert row is not None
        assert (row.status, row.attempts, row.result_code) == (
            "failed", 1, actions.UNKNOWN_OUTCOME,
        )  # fmt: skip
        done = ActionResult(outcome=ActionOutcome.DONE)
        assert (
            actions.record(
                session, action_id, done, started_ms=2_000, now_ms=80_000, retry_delay_ms=0
            )
            is None
        )

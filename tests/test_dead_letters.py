"""Dead letters (issue #29): parked inbox events, failed actions and dead deliveries listed,
retried or discarded over the API and the command line, each operation logged with who
asked and why; a discarded event is never taken again, a retried delivery reaches its
subscriber."""

from __future__ import annotations

import getpass
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import insert

from tests import testpay
from tests.conftest import clear
from tests.processes import plugin_site, wait_until
from tests.test_pipeline import SECRET, T0, registry, send
from tests.test_subscribers import SUBSCRIBER_SECRET, Subscriber
from waimai_bridge.cli import cli
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import inbox
from waimai_bridge.store.tables import Delivery, InboxEvent, OutboundAction
from waimai_bridge.web.app import create_app

OPS_TOKEN, READ_TOKEN = "dead-letters-ops-token", "dead-letters-read-token"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
LOGGER = "waimai_bridge.dead_letters"
BASE = "/api/v1/dead-letters"


def config_text(database_url: str) -> str:
    return f"""
[bridge]
database_url = "{database_url}"
shards = 2
accept_hold_seconds = 0
api_tokens = [
    {{ token = "{OPS_TOKEN}", name = "ops-token" }},
    {{ token = "{READ_TOKEN}", scopes = ["read"] }},
]
sweep_interval_seconds = 0.2
# the API's retries are sent at once; the sweeper sends what the command line put back
resend_after_seconds = 30
subscriber_retry_seconds = 0.2
subscriber_give_up_seconds = 30
subscriber_allow_private = true

[platforms.testpay]
secret = "{SECRET}"

[stores.S001]
testpay = {{ shop = 100001 }}
"""


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The config on a SQLite file, and the test platform installed for the command line."""
    folder = tmp_path_factory.mktemp("dead_letters")
    path = folder / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{folder / 'b.sqlite3'}"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(plugin_site(folder / "site")))
        for variable in ("WAIMAI_CONFIG", "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL"):
            patch.delenv(variable, raising=False)
        yield path


@pytest.fixture(scope="module")
def _client(config_path: Path) -> Iterator[TestClient]:
    plugins = registry()
    with TestClient(create_app(Bridge(load_config(config_path, plugins), plugins))) as client:
        yield client


@pytest.fixture
def client(_client: TestClient) -> TestClient:
    clear(bridge(_client).database)
    return _client


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    endpoint = Subscriber()
    yield endpoint
    endpoint.close()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def bridge(client: TestClient) -> Bridge:
    running: Bridge = client.app.state.bridge  # type: ignore[attr-defined]
    return running


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def parked(client: TestClient, message_id: str, order: str) -> int:
    """The inbox row of a push its plugin cannot read, once it is parked."""
    send(client, testpay.push(message_id, order, "note.poison", T0))

    def parked_row() -> int | None:
        with bridge(client).database.transaction() as session:
            rows = [row for row in inbox.failed(session) if row.platform_order_id == order]
            return rows[0].id if rows else None

    row_id: int = wait_until(parked_row, what=f"the event of {order} parked")
    return row_id


def inbox_row(client: TestClient, row_id: int) -> InboxEvent:
    with bridge(client).database.transaction() as session:
        row = session.get(InboxEvent, row_id)
        assert row is not None
        return row


def reason(text: str) -> dict[str, str]:
    return {"reason": text}


def test_a_parked_event_is_listed_discarded_and_never_taken_again(
    client: TestClient, logged: pytest.LogCaptureFixture
) -> None:
    row_id = parked(client, "D:0", "DL-1")
    listed = client.get(f"{BASE}/inbox", headers=READ)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert (item["id"], item["platform_order_id"], item["code"], item["status"]) == (
        row_id, "DL-1", "note.poison", "failed",
    )  # fmt: skip
    assert item["error"].startswith("ValueError: testpay cannot map this payload")
    assert item["parked_at"].endswith("+00:00")
    assert "payload" not in item

    url = f"{BASE}/inbox/{row_id}/discard"
    refused = client.post(url, json=reason("not ours"), headers=READ)
    assert refused.status_code == 403
    assert "'act' scope" in refused.json()["error"]
    for body in ({}, reason(""), reason("two\nlines"), reason("x" * 501)):
        invalid = client.post(url, json=body, headers=OPS)
        assert invalid.status_code == 422, body
        assert invalid.json()["error"].startswith("body.reason")
    assert inbox_row(client, row_id).status == "failed"
    assert lines(logged) == []

    discarded = client.post(url, json=reason("a test order of the shop, never real"), headers=OPS)
    assert discarded.status_code == 200, discarded.text
    view = discarded.json()
    assert (view["id"], view["status"]) == (row_id, "discarded")
    assert view["error"] == "discarded by ops-token: a test order of the shop, never real"
    assert lines(logged) == [
        f"inbox event {row_id} discarded by ops-token: a test order of the shop, never real"
    ]
    assert client.get(f"{BASE}/inbox", headers=READ).json() == {"items": []}
    for operation in ("discard", "retry"):
        again = client.post(f"{BASE}/inbox/{row_id}/{operation}", json=reason("again"), headers=OPS)
        assert again.status_code == 404
        assert again.json() == {"error": f"no parked inbox event {row_id}"}

    # the shard's worker applies the next push of the order, and leaves the discarded one
    send(client, testpay.push("D:1", "DL-1", "order.accepted", T0 + 1000))
    with bridge(client).database.transaction() as session:
        later = session.query(InboxEvent).filter_by(idempotency_key="D:1").one().id
    wait_until(lambda: inbox_row(client, later).status == "done", what="the next push applied")
    row = inbox_row(client, row_id)
    assert (row.status, row.attempts) == ("discarded", 1)
    with bridge(client).database.transaction() as session:
        assert inbox.take(session, row.shard, limit=10, now_ms=T0, row_id=row_id) == []
    assert not bridge(client).applier.retry(row_id)


def test_a_parked_event_is_retried_and_taken_again(
    client: TestClient, logged: pytest.LogCaptureFixture
) -> None:
    row_id = parked(client, "R:0", "DL-2")
    retried = client.post(
        f"{BASE}/inbox/{row_id}/retry", json=reason("the plugin is fixed"), headers=OPS
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["id"] == row_id
    assert lines(logged) == [f"inbox event {row_id} retried by ops-token: the plugin is fixed"]
    # still unreadable: taken again, and parked again
    wait_until(lambda: inbox_row(client, row_id).attempts == 2, what="the event taken again")
    wait_until(lambda: inbox_row(client, row_id).status == "failed", what="parked again")


def failed_action(client: TestClient, key: str, *, status: str = "failed") -> int:
    values = {
        "idempotency_key": key, "action": "confirm", "platform": "testpay",
        "platform_order_id": "DL-3", "store_id": "S001", "status": status, "attempts": 3,
        "attempt_limit": 3, "next_attempt_at_ms": T0, "result_code": "SERVER_ERROR",
        "result_message": "busy", "created_at_ms": T0, "updated_at_ms": T0,
    }  # fmt: skip
    statement = insert(OutboundAction).values(values).returning(OutboundAction.id)
    with bridge(client).database.transaction() as session:
        return int(session.execute(statement).scalar_one())


def action_attempts(client: TestClient, action_id: int) -> int:
    with bridge(client).database.transaction() as session:
        row = session.get(OutboundAction, action_id)
        assert row is not None
        return row.attempts


def test_a_failed_action_is_listed_and_retried(
    client: TestClient, logged: pytest.LogCaptureFixture
) -> None:
    action_id = failed_action(client, "dl-action-1")
    done = failed_action(client, "dl-action-2", status="done")
    listed = client.get(f"{BASE}/actions", params={"limit": 5}, headers=READ)
    [item] = listed.json()["items"]
    assert (item["id"], item["action"], item["attempts"], item["result"]) == (
        action_id, "confirm", 3, {"code": "SERVER_ERROR", "message": "busy"},
    )  # fmt: skip
    assert client.get(f"{BASE}/actions", params={"limit": 1001}, headers=READ).status_code == 400

    missing = client.post(f"{BASE}/actions/{done}/retry", json=reason("why not"), headers=OPS)
    assert (missing.status_code, missing.json()) == (404, {"error": f"no failed action {done}"})
    retried = client.post(
        f"{BASE}/actions/{action_id}/retry", json=reason("the platform is back"), headers=OPS
    )
    assert retried.status_code == 200, retried.text
    assert (retried.json()["id"], retried.json()["status"]) == (action_id, "pending")
    assert lines(logged) == [f"action {action_id} retried by ops-token: the platform is back"]
    # performed again: the test platform cannot act, so it fails once more, one call later
    wait_until(lambda: action_attempts(client, action_id) == 4, what="the action tried again")


def dead_delivery(client: TestClient, subscription_id: int, order_id: int) -> int:
    body = {"type": "order.status", "orderId": order_id, "status": "accepted",
            "platform": "testpay", "storeId": "S001", "version": 1, "timestamp": T0}  # fmt: skip
    values = {
        "subscription_id": subscription_id, "order_id": order_id, "kind": "order.status",
        "body": json.dumps(body), "status": "dead", "attempts": 7, "next_attempt_at_ms": T0,
        "last_error": "HTTP 503 Service Unavailable", "created_at_ms": T0,
    }  # fmt: skip
    statement = insert(Delivery).values(values).returning(Delivery.id)
    with bridge(client).database.transaction() as session:
        return int(session.execute(statement).scalar_one())


def delivery(client: TestClient, delivery_id: int) -> Delivery:
    with bridge(client).database.transaction() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def subscribe(client: TestClient, url: str) -> int:
    answer = client.post(
        "/api/v1/subscriptions", json={"url": url, "secret": SUBSCRIBER_SECRET}, headers=OPS
    )
    assert answer.status_code == 201, answer.text
    subscription_id: int = answer.json()["id"]
    return subscription_id


def test_a_dead_delivery_is_retried_and_reaches_its_subscriber(
    client: TestClient, subscriber: Subscriber, logged: pytest.LogCaptureFixture
) -> None:
    delivery_id = dead_delivery(client, subscribe(client, subscriber.url), 41)
    [item] = client.get(f"{BASE}/deliveries", headers=READ).json()["items"]
    assert (item["id"], item["platform"], item["order_id"], item["kind"], item["attempts"]) == (
        delivery_id, "testpay", 41, "order.status", 7,
    )  # fmt: skip
    assert item["last_error"] == "HTTP 503 Service Unavailable"

    refused = client.post(f"{BASE}/deliveries/{delivery_id}/retry", json=reason("up"), headers=READ)
    assert refused.status_code == 403
    retried = client.post(
        f"{BASE}/deliveries/{delivery_id}/retry", json=reason("the subscriber is up"), headers=OPS
    )
    assert retried.status_code == 200, retried.text
    view = retried.json()
    assert (view["id"], view["attempts"]) == (delivery_id, 7)
    assert view["created_at"] > item["created_at"]  # a fresh give-up time
    assert lines(logged) == [f"delivery {delivery_id} retried by ops-token: the subscriber is up"]
    wait_until(lambda: delivery(client, delivery_id).status == "done", what="delivered")
    assert [update["orderId"] for update in subscriber.updates()] == [41]
    assert delivery(client, delivery_id).attempts == 8
    again = client.post(f"{BASE}/deliveries/{delivery_id}/retry", json=reason("x"), headers=OPS)
    assert again.json() == {"error": f"no dead delivery {delivery_id}"}
    zero = client.post(f"{BASE}/deliveries/0/retry", json=reason("x"), headers=OPS)
    assert zero.status_code == 400


def test_dead_letters_from_the_command_line(
    client: TestClient, config_path: Path, subscriber: Subscriber,
    logged: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["--config", str(config_path), *args], env={"COLUMNS": "200"})

    who = f"cli:{getpass.getuser()}"
    kept, dropped = parked(client, "C:0", "DL-4"), parked(client, "C:1", "DL-5")
    listed = run("inbox", "failed")
    assert listed.exit_code == 0, listed.output
    assert "DL-4" in listed.output
    assert "DL-5" in listed.output
    unexplained = run("inbox", "discard", str(dropped))
    assert unexplained.exit_code == 2
    assert "Missing option '--reason'" in unexplained.output
    for bad in ("a\tb", " ", "x" * 501):
        refused = run("inbox", "retry", str(kept), "--reason", bad)
        assert refused.exit_code == 2
        assert "Invalid value for '--reason'" in refused.output

    discarded = run("inbox", "discard", str(dropped), "424242", "--reason", "a duplicate")
    assert discarded.exit_code == 1
    assert "1 inbox events discarded" in discarded.output
    assert "no failed inbox event with id 424242" in discarded.output
    assert inbox_row(client, dropped).error == f"discarded by {who}: a duplicate"
    retried = run("inbox", "retry", str(kept), "--reason", "config fixed")
    assert retried.exit_code == 0, retried.output
    assert "1 inbox events put back; the running serve picks them up" in retried.output
    # the running app's sweeper sends it: taken again, and parked again
    wait_until(lambda: inbox_row(client, kept).attempts == 2, what="the event taken again")

    action_id = failed_action(client, "dl-action-cli")
    assert "SERVER_ERROR busy" in run("actions", "list", "--failed").output
    action = run("actions", "retry", str(action_id), "--reason", "checked on the platform")
    assert action.exit_code == 0, action.output
    assert "1 actions put back" in action.output

    delivery_id = dead_delivery(client, subscribe(client, subscriber.url), 42)
    assert "HTTP 503 Service Unavailable" in run("deliveries", "dead").output
    sent = run("deliveries", "retry", str(delivery_id), "--reason", "subscriber fixed")
    assert sent.exit_code == 0, sent.output
    assert "1 deliveries put back" in sent.output
    wait_until(lambda: delivery(client, delivery_id).status == "done", what="delivered")
    assert 42 in [update.get("orderId") for update in subscriber.updates()]
    assert lines(logged) == [
        f"inbox event {dropped} discarded by {who}: a duplicate",
        f"inbox event {kept} retried by {who}: config fixed",
        f"action {action_id} retried by {who}: checked on the platform",
        f"delivery {delivery_id} retried by {who}: subscriber fixed",
    ]

"""Subscriber webhooks (seed 001): every order update reaches a subscriber that was down for
a while, signed, with versions that let it order them; filters; dead updates."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import clear
from tests.processes import wait_until
from tests.sample_plugin import PRICE
from tests.test_pipeline import AUTH, config_text, lifecycle, registry, send
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import outbox, subscriptions
from waimai_bridge.store.skus import SkuRow, import_skus
from waimai_bridge.store.tables import Delivery, InboxEvent, Order
from waimai_bridge.web.app import create_app

SUBSCRIBER_SECRET = "subscriber-secret-0123456789"


class Subscriber:
    """A subscriber's endpoint: answers 503 while ``down``, records what it takes."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.refused = 0
        self._lock = threading.Lock()
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with subscriber._lock:
                    if subscriber.down:
                        subscriber.refused += 1
                    else:
                        subscriber.received.append((dict(self.headers.items()), body))
                self.send_response(503 if subscriber.down else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    endpoint = Subscriber()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def _client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("subscribers")
    path = folder / "bridge.toml"
    extra = "subscriber_retry_seconds = 0.2\nsubscriber_give_up_seconds = 30\n"
    extra += "subscriber_allow_private = true"
    path.write_text(config_text(f"sqlite:///{folder / 'b.sqlite3'}", bridge_extra=extra))
    plugins = registry()
    with TestClient(create_app(Bridge(load_config(path, plugins), plugins))) as client:
        yield client


@pytest.fixture
def client(_client: TestClient) -> TestClient:
    database = _client.app.state.bridge.database  # type: ignore[attr-defined]
    clear(database)
    with database.transaction() as session:  # PRICE's lines mapped: no anomaly updates
        list(import_skus(session, [SkuRow("testpay", "SKU-1", "P-1")], now_ms=0))
    return _client


def subscribe(client: TestClient, url: str, **filters: Any) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/subscriptions",
        json={"url": url, "secret": SUBSCRIBER_SECRET, **filters},
        headers=AUTH,
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def verify(headers: dict[str, str], body: bytes) -> bool:
    """What a subscriber does (docs/subscribers.md)."""
    timestamp = headers["X-Waimai-Timestamp"]
    expected = hmac.new(
        SUBSCRIBER_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, headers["X-Waimai-Signature"])


LIFECYCLES = {
    "S-1": ("order.created", "order.accepted", "kitchen.preparing", "rider.at_store",
            "rider.delivering", "order.completed"),
    "S-2": ("order.created", "order.accepted", "cancel.requested", "cancel.agreed"),
    "S-3": ("order.created", "order.accepted", "rider.delivering", "order.completed",
            "refund.requested", "refund.rejected"),
}  # fmt: skip


def test_a_subscriber_down_for_a_while_receives_every_update(
    client: TestClient, subscriber: Subscriber
) -> None:
    subscribe(client, subscriber.url)
    subscriber.down = True
    for order, codes in LIFECYCLES.items():
        for body in lifecycle(order, *codes, price=PRICE):
            assert send(client, body).status_code == 200
    bridge: Bridge = client.app.state.bridge  # type: ignore[attr-defined]

    def applied() -> bool:
        with bridge.database.transaction() as session:
            statuses = session.execute(select(InboxEvent.status)).scalars().all()
            stored = session.execute(select(func.count()).select_from(Order)).scalar_one()
        pushed = sum(map(len, LIFECYCLES.values()))
        return (len(statuses), set(statuses), stored) == (pushed, {"done"}, len(LIFECYCLES))

    wait_until(applied, 20, "every push applied and every order stored")
    wait_until(lambda: subscriber.refused >= 3, 10, "the subscriber refused some updates")
    subscriber.down = False
    with bridge.database.transaction() as session:
        final: dict[int, dict[str, Any]] = {
            order.id: {"state": order.state, "version": order.version}
            for order in session.execute(select(Order)).scalars()
        }
    assert len(final) == len(LIFECYCLES)

    def versions() -> dict[int, set[int]]:
        seen: dict[int, set[int]] = {}
        for update in subscriber.updates():
            if update["type"] == "order.status":
                seen.setdefault(update["orderId"], set()).add(update["version"])
        return seen

    expected = {order_id: set(range(1, view["version"] + 1)) for order_id, view in final.items()}
    wait_until(lambda: versions() == expected, 30, "every version of every order delivered")
    assert all(verify(headers, body) for headers, body in subscriber.received)
    for order_id, view in final.items():
        # by version, each once: an update may arrive twice (docs/subscribers.md)
        distinct = {u["version"]: u for u in subscriber.updates() if u.get("orderId") == order_id}
        updates = [distinct[version] for version in sorted(distinct)]
        assert updates[-1]["status"] == view["state"]
        assert [u["previousStatus"] for u in updates[1:]] == [u["status"] for u in updates[:-1]]
        assert updates[0]["previousStatus"] is None
        assert {u["platform"] for u in updates} == {"testpay"}


def test_filters_narrow_what_a_subscriber_hears(client: TestClient, subscriber: Subscriber) -> None:
    subscribe(client, subscriber.url, store_ids=["S002"], states=["completed"])
    for body in lifecycle("F-1", *LIFECYCLES["S-1"], price=PRICE):  # store S001
        send(client, body)
    for body in lifecycle("F-2", *LIFECYCLES["S-1"], price=PRICE, shop="100002"):
        send(client, body)
    wait_until(lambda: len(subscriber.updates()) >= 1, 10, "the completed update delivered")
    completed = {"state": "completed"}
    wait_until(
        lambda: len(client.get("/api/v1/orders", params=completed, headers=AUTH).json()["items"])
        == 2, 10, "both orders completed",
    )  # fmt: skip
    # an update may arrive twice (docs/subscribers.md): one distinct update, by version
    [update] = {(u["orderId"], u["version"]): u for u in subscriber.updates()}.values()
    assert (update["storeId"], update["status"]) == ("S002", "completed")


def test_an_update_nobody_takes_dies_visibly(client: TestClient, tmp_path: Path) -> None:
    subscribe(client, "http://127.0.0.1:9/nobody-listens")
    bridge: Bridge = client.app.state.bridge  # type: ignore[attr-defined]
    for body in lifecycle("D-1", "order.created", "order.accepted", price=PRICE):
        send(client, body)

    def dead() -> list[Any]:
        with bridge.database.transaction() as session:
            return [(row.kind, row.attempts, row.last_error) for row in outbox.dead(session)]

    give_up = bridge.deliverer.give_up_ms
    bridge.deliverer.give_up_ms = 500
    try:
        [(kind, attempts, error)] = wait_until(dead, 15, "the update given up")
    finally:
        bridge.deliverer.give_up_ms = give_up
    assert kind == "order.status"
    assert attempts >= 1
    assert "ConnectError" in error


def test_subscriptions_are_listed_without_secrets_and_deleted(
    client: TestClient, subscriber: Subscriber
) -> None:
    created = subscribe(client, subscriber.url, platforms=["testpay"])
    listed = client.get("/api/v1/subscriptions", headers=AUTH).json()
    assert listed == [created]
    assert SUBSCRIBER_SECRET not in json.dumps(listed)
    assert client.delete(f"/api/v1/subscriptions/{created['id']}", headers=AUTH).status_code == 204
    assert client.get("/api/v1/subscriptions", headers=AUTH).json() == []
    assert client.delete(f"/api/v1/subscriptions/{created['id']}", headers=AUTH).status_code == 404
    bad = client.post(
        "/api/v1/subscriptions", json={"url": "ftp://x", "secret": "short"}, headers=AUTH
    )
    assert bad.status_code == 422


def test_a_subscriber_url_the_client_cannot_call_fails_alone(
    client: TestClient, subscriber: Subscriber
) -> None:
    subscribe(client, subscriber.url)
    bridge: Bridge = client.app.state.bridge  # type: ignore[attr-defined]
    with bridge.database.transaction() as session:  # kept before URLs were checked this well
        subscriptions.subscribe(
            session, url="http://ex\u00e4mple..com/hook", secret=SUBSCRIBER_SECRET,
            store_ids=None, platforms=None, states=None, now_ms=bridge.clock(),
        )  # fmt: skip
    for body in lifecycle("U-1", "order.created", "order.accepted", price=PRICE):
        send(client, body)
    wait_until(lambda: subscriber.updates(), 10, "the good subscriber's update")

    def outcomes() -> list[tuple[str, str | None]]:
        with bridge.database.transaction() as session:
            rows = session.execute(
                select(Delivery.status, Delivery.last_error).order_by(Delivery.id)
            )
            return [(status, error) for status, error in rows]

    [(good, _), (bad, error)] = wait_until(
        lambda: (found := outcomes()) and all(e or s == "done" for s, e in found) and found,
        10, "both outcomes recorded",
    )  # fmt: skip
    assert good == "done"
    assert bad == "pending"
    assert error is not None
    assert error.startswith("InvalidURL")


def test_a_url_the_client_cannot_call_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/subscriptions",
        json={"url": "http://ex\u00e4mple..com/hook", "secret": SUBSCRIBER_SECRET},
        headers=AUTH,
    )
    assert answer.status_code == 422
    assert "not a URL that can be called" in answer.text

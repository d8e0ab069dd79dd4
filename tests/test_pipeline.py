"""The pipeline in one process (embedded mode): signed pushes in over the ASGI app, the
in-process worker folding them, orders read back from the API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests import testpay
from tests.conftest import clear
from tests.processes import wait_until
from tests.sample_plugin import PRICE
from waimai_bridge.config import load_config
from waimai_bridge.models import InboundRequest
from waimai_bridge.pipeline.broker import GATHER_MS, DoorbellRedisBroker, make_broker
from waimai_bridge.pipeline.holds import BEHIND_MS, RELEASE_HOLDS, Hold, HoldReleases
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.shards import PROCESS_SHARD, queue_name, shard_of
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import inbox
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import InboxEvent, Order, OrderEvent, PlatformOrder
from waimai_bridge.web.app import create_app

SECRET = "testpay-secret"
TOKEN = "pipeline-api-token-0001"
T0 = 1_716_181_200_000
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config_text(
    database_url: str, *, hold: int = 0, broker: str = "", resend_after: float = 0.5,
    bridge_extra: str = "",
) -> str:  # fmt: skip
    """A bridge config with the test platform and two stores (``bridge_extra``: more
    ``[bridge]`` lines)."""
    return f"""
[bridge]
database_url = "{database_url}"
broker_url = "{broker}"
public_base_url = "https://bridge.example.com"
shards = 4
accept_hold_seconds = {hold}
api_tokens = ["{TOKEN}"]
sweep_interval_seconds = 0.2
resend_after_seconds = {resend_after}
{bridge_extra}

[platforms.testpay]
secret = "{SECRET}"

[stores.S001]
testpay = {{ shop = 100001 }}

[stores.S002]
testpay = {{ shop = "100002" }}
"""


def registry() -> PluginRegistry:
    plugins = PluginRegistry.discover(blocked=())
    plugins.add(testpay.NAME, testpay)
    return plugins


@pytest.fixture(scope="module")
def _clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, TestClient]]:
    """One running app per accept hold, shared by the module's tests (starting and
    stopping the embedded worker costs a second or two)."""
    clients: dict[int, TestClient] = {}
    yield clients
    for client in clients.values():
        client.__exit__(None, None, None)


@pytest.fixture
def make_client(
    _clients: dict[int, TestClient], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., TestClient]:
    """A running embedded bridge with an empty database, accept hold ``hold`` seconds."""

    def make(*, hold: int = 0) -> TestClient:
        if hold not in _clients:
            folder = tmp_path_factory.mktemp(f"hold{hold}")
            path = folder / "bridge.toml"
            path.write_text(
                config_text(f"sqlite:///{folder / 'bridge.sqlite3'}", hold=hold), "utf-8"
            )
            plugins = registry()
            client = TestClient(create_app(Bridge(load_config(path, plugins), plugins)))
            client.__enter__()
            _clients[hold] = client
        client = _clients[hold]
        clear(bridge_of(client).database)
        return client

    return make


def send(client: TestClient, body: bytes, *, signature: str | None = None) -> Any:
    headers = {
        testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET) if signature is None else signature
    }
    return client.post("/webhooks/testpay", content=body, headers=headers)


def bridge_of(client: TestClient) -> Bridge:
    bridge: Bridge = client.app.state.bridge  # type: ignore[attr-defined]
    return bridge


def orders(client: TestClient, **filters: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/orders", params=filters, headers=AUTH)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def platform_order(client: TestClient, order: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(
        f"/api/v1/platform-orders/testpay/{order}", headers=AUTH
    ).json()
    return answer


def inbox_count(client: TestClient) -> int:
    with bridge_of(client).database.transaction() as session:
        return session.execute(select(func.count()).select_from(InboxEvent)).scalar_one()


def lifecycle(order: str, *codes: str, start: int = 0, **extra: Any) -> list[bytes]:
    return [
        testpay.push(f"{order}:{n}", order, code, T0 + n * 1000, **extra)
        for n, code in enumerate(codes, start=start)
    ]


# --------------------------------------------------------------------------- happy path


def test_signed_pushes_become_orders(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    first = testpay.push("T1:0", "T1", "order.created", T0, price=PRICE)
    answer = send(client, first)
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    for body in lifecycle("T1", "order.accepted", "kitchen.preparing", "rider.delivering", start=1):
        assert send(client, body).status_code == 200
    assert send(client, first).json() == {"ok": True}  # a duplicate gets the normal ACK

    [order] = wait_until(lambda: [o for o in orders(client) if o["state"] == "delivering"])
    assert order["platform"] == "testpay"
    assert order["platform_order_id"] == "T1"
    assert order["store_id"] == "S001"
    assert order["rider_state"] == "delivering"
    assert order["platform_state"] == {"code": 55, "name": "rider_delivering"}
    assert order["saved_state"] is None
    assert order["price"]["user_paid"] == PRICE["user_paid"]
    assert [item["sku_code"] for item in order["items"]] == ["SKU-1"]
    assert order["items"][0]["unmapped"] is True
    assert order["anomalies"][0]["kind"] == "unmapped_sku"
    assert order["events"] is None
    detail = client.get(f"/api/v1/orders/{order['id']}", headers=AUTH).json()
    by_time = sorted(detail["events"], key=lambda event: event["platform_time"])
    assert [event["native_code"] for event in by_time] == [
        "order.created", "order.accepted", "kitchen.preparing", "rider.delivering",
    ]  # fmt: skip
    assert set(detail) == {
        "id", "platform", "platform_order_id", "store_id", "state", "rider_state",
        "platform_state", "saved_state", "items", "price", "details", "refunded_amount",
        "net_income", "income_rule", "anomalies", "events", "created_at", "updated_at",
    }  # fmt: skip
    assert detail["details"] is None  # testpay states no day number nor remark here
    assert (detail["net_income"], detail["income_rule"]) == (PRICE["merchant_income"], "stated")
    view = client.get("/api/v1/platform-orders/testpay/T1", headers=AUTH).json()
    assert view == {
        "state": {"code": 55, "name": "rider_delivering"},
        "order_state": None,
        "stored": True,
        "order_id": order["id"],
    }
    with bridge_of(client).database.transaction() as session:
        assert session.execute(select(func.count()).select_from(OrderEvent)).scalar_one() == 4


def test_an_orders_details_are_stored_and_shown(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    send(client, testpay.push("D1:0", "D1", "order.created", T0, day_seq=17, remark="少辣"))
    send(client, testpay.push("D1:1", "D1", "order.accepted", T0 + 1000))  # states none
    [order] = wait_until(lambda: orders(client, platform_order_id="D1"))
    assert order["details"] == {"day_seq": 17, "remark": "少辣"}
    send(client, testpay.push("D1:2", "D1", "kitchen.preparing", T0 + 2000, remark="多加饭"))
    wait_until(lambda: orders(client, platform_order_id="D1")[0]["state"] == "preparing")
    detail = client.get(f"/api/v1/orders/{order['id']}", headers=AUTH).json()
    assert detail["details"] == {"day_seq": None, "remark": "多加饭"}  # the latest stated
    with bridge_of(client).database.transaction() as session:
        stored = select(PlatformOrder.details).where(PlatformOrder.platform_order_id == "D1")
        assert session.scalar(stored) == {"day_seq": None, "remark": "多加饭"}


def test_a_request_pending_shows_the_remembered_state(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    for body in lifecycle(
        "T2", "order.accepted", "rider.delivering", "refund.requested", "order.completed"
    ):
        send(client, body)
    wait_until(lambda: (platform_order(client, "T2").get("state") or {}).get("code") == 18)
    [order] = wait_until(lambda: orders(client, platform_order_id="T2"))
    assert (order["state"], order["saved_state"]) == ("refunding", "completed")
    view = client.get("/api/v1/platform-orders/testpay/T2", headers=AUTH).json()
    assert view["order_state"] == "completed"


def test_an_order_not_yet_stored_is_a_platform_order_only(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(hold=60)
    send(client, testpay.push("T3:0", "T3", "order.created", T0, price=PRICE))
    send(client, testpay.push("T3:1", "T3", "order.accepted", T0 + 1))
    view = wait_until(
        lambda: (
            client.get("/api/v1/platform-orders/testpay/T3", headers=AUTH).json().get("state")
            and client.get("/api/v1/platform-orders/testpay/T3", headers=AUTH).json()
        )
    )
    wait_until(
        lambda: (
            client.get("/api/v1/platform-orders/testpay/T3", headers=AUTH).json()["state"]["code"]
            == 12
        )
    )
    view = client.get("/api/v1/platform-orders/testpay/T3", headers=AUTH).json()
    assert view == {
        "state": {"code": 12, "name": "accepted"},
        "order_state": None,
        "stored": False,
        "order_id": None,
    }
    assert orders(client) == []
    unknown = client.get("/api/v1/platform-orders/testpay/NOPE", headers=AUTH)
    assert unknown.status_code == 404


def test_the_accept_hold_runs_on_a_delayed_message(make_client: Callable[..., TestClient]) -> None:
    client = make_client(hold=1)
    for body in lifecycle("KEEP", "order.created", "order.accepted"):
        send(client, body)
    for body in lifecycle("DROP", "order.created", "order.accepted", "order.force_invalidated"):
        send(client, body)
    [kept] = wait_until(lambda: orders(client), timeout=15)
    assert kept["platform_order_id"] == "KEEP"

    def discarded() -> bool:
        with bridge_of(client).database.transaction() as session:
            found = select(PlatformOrder.discarded).where(PlatformOrder.platform_order_id == "DROP")
            return bool(session.scalar(found))

    wait_until(discarded, 15, "the cancelled order's hold over")
    assert [order["platform_order_id"] for order in orders(client)] == ["KEEP"]
    assert (
        client.get("/api/v1/platform-orders/testpay/DROP", headers=AUTH).json()["stored"] is False
    )


# --------------------------------------------------------------------------- bad input


BAD_PUSHES = {
    "wrong signature": ("/webhooks/testpay", b'{"id":"x"}', "wrong", 401, '{"ok":false}'),
    "no signature": ("/webhooks/testpay", b'{"id":"x"}', "", 401, '{"ok":false}'),
    "not json": ("/webhooks/testpay", b"not json", None, 400, "the body is not JSON"),
    "fields missing": (
        "/webhooks/testpay", b'{"id":"x"}', None, 400, "a push needs id, shop, order, code and time"
    ),
    "unknown store": (
        "/webhooks/testpay", testpay.push("m", "T", "order.created", T0, shop="999"), None, 400,
        "no store is bound to shop '999'",
    ),
    "unknown platform": ("/webhooks/nowhere", b"{}", None, 404, "no platform plugin 'nowhere'"),
    "platform not configured": (
        "/webhooks/eleme", b"{}", None, 404, "platform 'eleme' has no [platforms.eleme] table in"
    ),
    "unknown kind": (
        "/webhooks/testpay/kind", b"{}", None, 404,
        "platform 'testpay' has no push POST /webhooks/testpay/kind",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_PUSHES)
def test_bad_input_is_refused_and_nothing_is_written(
    make_client: Callable[..., TestClient], case: str
) -> None:
    path, body, signature, status, answer = BAD_PUSHES[case]
    client = make_client()
    signed = testpay.sign(body, SECRET) if signature is None else signature
    response = client.post(path, content=body, headers={testpay.SIGNATURE_HEADER: signed})
    assert response.status_code == status, response.text
    assert answer in response.text
    assert SECRET not in response.text
    assert inbox_count(client) == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_empty_probe_gets_the_normal_ack(
    make_client: Callable[..., TestClient], method: str
) -> None:
    client = make_client()
    response = client.request(method, "/webhooks/testpay")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert inbox_count(client) == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "answer"),
    [
        ("POST", "/webhooks/testpay/kind/more", 404, "no webhook at /webhooks/testpay/kind/more"),
        ("POST", "/webhooks/testpay/", 404, "no webhook at /webhooks/testpay/"),
        ("POST", "/webhooks/", 404, "no webhook at /webhooks/"),
        ("PUT", "/webhooks/testpay", 405, "webhooks take GET or POST, not PUT"),
    ],
)
def test_a_request_outside_the_webhook_urls_is_refused(
    make_client: Callable[..., TestClient], method: str, path: str, status: int, answer: str
) -> None:
    client = make_client()
    body = testpay.push("W:0", "W", "order.created", T0)
    signed = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
    response = client.request(method, path, content=body, headers=signed)
    assert (response.status_code, response.json()) == (status, {"error": answer})
    if status == 405:
        assert response.headers["allow"] == "GET, POST"
    assert inbox_count(client) == 0


@pytest.mark.parametrize(
    "path", ["/webhooks/testpay", "/webhooks/测试/a b", "/webhooks/x?y#z", "/webhooks/a\\b"]
)
def test_a_push_is_given_the_url_path_starlette_would_give_it(path: str) -> None:
    from starlette.requests import Request

    from waimai_bridge.web.webhooks import _url_path

    scope = {"type": "http", "path": path, "query_string": b"", "headers": [(b"host", b"h")]}
    assert _url_path(scope) == Request(scope).url.path


def test_a_body_over_one_mib_is_refused(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    mib = 1 << 20
    assert send(client, b"x" * (mib + 1)).status_code == 413
    assert send(client, b"x" * mib).status_code == 400  # read, and refused as no push


# --------------------------------------------------------------------------- poison and recovery


def test_a_poison_event_is_parked_without_blocking_others(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    send(client, testpay.push("P:0", "POISONED", "order.accepted", T0))
    send(client, testpay.push("P:1", "POISONED", "note.poison", T0 + 1000))
    for body in lifecycle("HEALTHY", "order.accepted", "rider.delivering"):
        send(client, body)
    wait_until(
        lambda: [
            o
            for o in orders(client)
            if o["platform_order_id"] == "HEALTHY" and o["state"] == "delivering"
        ]
    )
    bridge = bridge_of(client)

    def parked() -> list[InboxEvent]:
        with bridge.database.transaction() as session:
            return list(inbox.failed(session))

    [row] = wait_until(parked)
    assert row.error == "ValueError: testpay cannot map this payload"
    assert (row.platform_order_id, row.attempts) == ("POISONED", 1)
    assert row.payload != {}, "a parked event keeps its payload for its retry"
    with bridge.database.transaction() as session:  # an applied payload is stored once
        applied = session.execute(
            select(InboxEvent.idempotency_key, InboxEvent.payload, OrderEvent.payload)
            .join(OrderEvent, OrderEvent.idempotency_key == InboxEvent.idempotency_key)
            .where(InboxEvent.status == "done", InboxEvent.platform_order_id == "HEALTHY")
        ).all()
    assert len(applied) == 2
    assert all(in_inbox == {} and logged != {} for _, in_inbox, logged in applied), applied

    testpay.CURED.add("POISONED")
    try:
        assert bridge.applier.retry(row.id)
        assert not bridge.applier.retry(row.id)  # no longer failed

        def status() -> tuple[str, int, str | None] | None:
            with bridge.database.transaction() as session:
                found = session.get(InboxEvent, row.id)
                assert found is not None
                return (found.status, found.attempts, found.error)

        wait_until(lambda: status() == ("done", 2, None))
    finally:
        testpay.CURED.discard("POISONED")


def test_the_sweeper_resends_what_a_lost_message_left(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    bridge = bridge_of(client)
    lost = testpay.push("L:0", "LOST", "order.accepted", T0)
    # the push reaches the inbox, but its message never reaches a queue
    parsed = bridge.registry.platform("testpay").parse_event(
        InboundRequest(method="POST", url="x", kind=None, query=[], headers={
            testpay.SIGNATURE_HEADER: testpay.sign(lost, SECRET)}, body=lost, received_at_ms=T0),
        bridge.config.plugin_config("testpay"),
    )  # fmt: skip
    assert parsed is not None
    with bridge.database.transaction() as session:
        inbox.record(
            session, [(e, bridge.clock()) for e in parsed.events], shard_of=lambda store: 0
        )
    [order] = wait_until(lambda: orders(client), timeout=10)
    assert order["platform_order_id"] == "LOST"


# --------------------------------------------------------------------------- the API


def test_the_api_wants_a_bearer_token(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = client.get("/api/v1/orders", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in response.text


def test_orders_filter_and_page(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for n in range(5):
        shop = "100001" if n % 2 == 0 else "100002"
        send(client, testpay.push(f"F{n}", f"F{n}", "order.accepted", T0 + n, shop=shop))
    everything = wait_until(lambda: len(found := orders(client)) == 5 and found)
    assert sorted(o["platform_order_id"] for o in orders(client, store_id="S002")) == ["F1", "F3"]
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = client.get("/api/v1/orders", params=params, headers=AUTH).json()
        pages.append([o["id"] for o in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [order_id for page in pages for order_id in page] == sorted(o["id"] for o in everything)
    assert orders(client, state="refunded") == []
    assert len(orders(client, since="2000-01-01T00:00:00Z")) == 5
    assert orders(client, since=str(2**50)) == []
    bad = client.get("/api/v1/orders", params={"since": "yesterday"}, headers=AUTH)
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "since must be epoch milliseconds or an ISO 8601 time"},
    )
    assert client.get("/api/v1/orders", params={"state": "lost"}, headers=AUTH).status_code == 400
    assert client.get("/api/v1/orders/999999", headers=AUTH).status_code == 404


def test_health_metrics_and_openapi(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    health = client.get("/healthz")
    assert (health.status_code, health.json()) == (
        200,
        {"status": "ok", "database": "ok", "broker": "ok"},
    )
    send(client, testpay.push("M:0", "M", "order.accepted", T0))
    wait_until(lambda: orders(client))
    metrics = client.get("/metrics").text
    assert 'waimai_webhook_requests_total{platform="testpay",status="200"}' in metrics
    assert "waimai_push_to_commit_seconds_count" in metrics
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/webhooks/{platform}", "/webhooks/{platform}/{kind}", "/api/v1/orders",
            "/api/v1/orders/{order_id}", "/api/v1/platform-orders/{platform}/{platform_order_id}",
            "/healthz"} <= set(paths)  # fmt: skip
    for path in ("/webhooks/{platform}", "/webhooks/{platform}/{kind}"):
        assert set(paths[path]) == {"parameters", "get", "post"}
        assert {"200", "400", "401", "404", "503"} <= set(paths[path]["post"]["responses"])
    operations = [
        operation["operationId"]
        for item in paths.values()
        for method, operation in item.items()
        if method != "parameters"
    ]
    assert len(operations) == len(set(operations))


# --------------------------------------------------------------------------- shards


def test_a_push_whose_store_is_a_guess_is_filed_under_its_orders_store(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    created = testpay.push("G:0", "G", "order.created", T0, shop="100002")
    assert send(client, created).status_code == 200
    wait_until(
        lambda: client.get("/api/v1/platform-orders/testpay/G", headers=AUTH).status_code
        == 200, 10, "the order known",
    )  # fmt: skip
    guessed = testpay.push("G:1", "G", "rider.at_store", T0 + 1, shop="100001", inferred=True)
    unknown = testpay.push("U:0", "U", "rider.at_store", T0 + 1, shop="100001", inferred=True)
    assert send(client, guessed).status_code == 200
    assert send(client, unknown).status_code == 200
    with bridge_of(client).database.transaction() as session:
        rows = session.execute(
            select(InboxEvent.idempotency_key, InboxEvent.store_id, InboxEvent.shard)
        ).all()
    pipeline = bridge_of(client).pipeline
    assert sorted(rows) == [
        ("G:0", "S002", shard_of("S002", pipeline.shards)),
        ("G:1", "S002", shard_of("S002", pipeline.shards)),  # the order's store, not the guess
        ("U:0", "S001", shard_of("S001", pipeline.shards)),  # no order known: the guess stands
    ]


def test_a_store_named_later_replaces_a_guessed_one(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    first = testpay.push("H:0", "H", "rider.at_store", T0, shop="100001", inferred=True)
    assert send(client, first).status_code == 200
    wait_until(
        lambda: client.get("/api/v1/platform-orders/testpay/H", headers=AUTH).status_code
        == 200, 10, "the order known under the guessed store",
    )  # fmt: skip
    for body in lifecycle("H", "order.created", "order.accepted", start=1, shop="100002"):
        assert send(client, body).status_code == 200
    # stored already, under the guessed store, if its accept hold (none here) ended before
    # the named store's events were applied: then they move it
    [order] = wait_until(
        lambda: [o for o in orders(client, platform_order_id="H") if o["store_id"] == "S002"],
        10, "H stored under the store its events named",
    )  # fmt: skip
    assert order["store_id"] == "S002"
    with bridge_of(client).database.transaction() as session:
        row = session.execute(select(PlatformOrder).where(PlatformOrder.platform_order_id == "H"))
        platform_order = row.scalar_one()
        assert (platform_order.store_id, platform_order.store_inferred) == ("S002", False)


def test_a_store_always_goes_to_the_same_queue() -> None:
    assert shard_of("S001", 8) == shard_of("S001", 8)
    assert queue_name(shard_of("S001", 8)) == f"waimai.shard.{shard_of('S001', 8)}"
    assert shard_of("S001", 8) == 1  # crc32: the same in every process and Python version
    spread = {shard_of(f"S{n:04}", 8) for n in range(200)}
    assert spread == set(range(8))


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_a_shard_signal_lets_one_message_wait(kind: str, redis_url: str) -> None:
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.brokers.stub import StubBroker

    from waimai_bridge.pipeline.signals import SIGNAL_TTL_SECONDS, signals_for

    broker = RedisBroker(url=redis_url) if kind == "redis" else StubBroker()  # type: ignore[no-untyped-call]
    signals = signals_for(broker)
    assert signals.raise_signals([3]) == {3}  # down: send a message
    assert signals.raise_signals([3]) == set()  # a message waits already
    assert signals.raise_signals([3, 4, 5]) == {4, 5}  # shards are independent
    signals.lower(3)  # a worker is reading shard 3
    assert signals.raise_signals([4, 3]) == {3}
    if isinstance(broker, RedisBroker):
        ttl = broker.client.ttl(f"{broker.namespace}:waimai.signal.3")
        assert 0 < ttl <= SIGNAL_TTL_SECONDS
    broker.close()


def _held_bridge(tmp_path: Any, now: list[int]) -> Bridge:
    """A bridge with a 60 s accept hold on SQLite and the in-process broker, whose clock
    reads ``now[0]``; nothing consumes its queues."""
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'held.sqlite3'}", hold=60), "utf-8")
    plugins = registry()
    bridge = Bridge(load_config(path, plugins), plugins, clock=lambda: now[0])
    bridge.database.ensure_schema()
    return bridge


def _accepted(bridge: Bridge, order: str, at_ms: int) -> None:
    """Receive an order's acceptance (which starts its accept hold) and apply it."""
    body = testpay.push(f"{order}:0", order, "order.accepted", at_ms)
    request = InboundRequest(
        method="POST", url="u", kind=None, query=[], received_at_ms=at_ms,
        headers={testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}, body=body,
    )  # fmt: skip
    parsed = bridge.registry.platform("testpay").parse_event(
        request, bridge.config.plugin_config("testpay")
    )
    assert parsed is not None
    _, shards = write_pushes(bridge.pipeline, [(parsed.events, at_ms)])
    bridge.pipeline.wake(*shards)
    bridge.applier.process_shard(bridge.pipeline.shard_of(parsed.events[0].store_id))


def _stored(bridge: Bridge) -> set[str]:
    with bridge.database.transaction() as session:
        return set(session.execute(select(Order.platform_order_id)).scalars())


def test_a_late_release_takes_the_shards_other_due_holds_along(tmp_path: Any) -> None:
    now = [T0]
    bridge = _held_bridge(tmp_path, now)
    holds = bridge.holds
    for order in ("L1", "L2", "L3", "L4"):
        _accepted(bridge, order, T0)
    now[0] = T0 + 60_000 + 500  # on time: only this order
    holds.release_holds([["testpay", "L1", "S001"]])
    assert _stored(bridge) == {"L1"}
    now[0] = T0 + 60_000 + BEHIND_MS - 1  # a little late: still only this order
    holds.release_holds([["testpay", "L2", "S001"]])
    assert _stored(bridge) == {"L1", "L2"}
    now[0] = T0 + 60_000 + BEHIND_MS + 1  # a backlog: its shard's other due holds too
    holds.release_holds([["testpay", "L3", "S001"]])
    assert _stored(bridge) == {"L1", "L2", "L3", "L4"}
    bridge.stop()


def test_the_sweeper_releases_holds_whose_message_was_lost(tmp_path: Any) -> None:
    now = [T0]
    bridge = _held_bridge(tmp_path, now)
    broker = bridge.broker
    assert isinstance(broker, StubBroker)
    _accepted(bridge, "LOST", T0)
    _accepted(bridge, "LATER", T0 + 30_000)
    broker.flush_all()  # their delayed releases are lost (Redis was flushed, say)
    queue = broker.queues[bridge.pipeline.queue_of("S001")]
    for order, ends_at in (("LOST", T0 + 60_000), ("LATER", T0 + 90_000)):
        now[0] = ends_at + bridge.sweeper.stale_after_ms  # not overdue long enough yet
        assert bridge.sweeper.sweep().releases == 0
        now[0] += 1
        assert bridge.sweeper.sweep().releases == 1
        [message] = [Message.decode(data) for data in queue.queue]
        assert (message.actor_name, message.args) == (
            RELEASE_HOLDS,
            ([["testpay", order, "S001"]],),
        )
        broker.flush_all()
        bridge.holds.release_holds(*message.args)
        assert order in _stored(bridge)
    assert _stored(bridge) == {"LOST", "LATER"}
    bridge.stop()


def waiting_on_doorbells(redis_url: str) -> int:
    """How many clients of the tests' Redis database wait in ``BLPOP`` (on a doorbell)."""
    db = redis_url.rpartition("/")[2]
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for one in client.client_list() if (one["db"], one["cmd"]) == (db, "blpop"))
    finally:
        client.close()


@pytest.fixture
def broker(redis_url: str) -> Iterator[DoorbellRedisBroker]:
    """The production broker, on the tests' Redis."""
    broker = make_broker(redis_url)
    assert isinstance(broker, DoorbellRedisBroker)
    yield broker
    broker.close()


def test_an_idle_consumer_waits_for_its_doorbell_and_an_enqueue_rings_it(
    broker: DoorbellRedisBroker,
) -> None:
    queue = queue_name(3)
    broker.declare_queue(queue)
    doorbell = broker.doorbell(queue)
    consumer = broker.consume(queue, prefetch=4, timeout=60_000)
    try:
        assert next(consumer) is None  # empty: from now on it waits for the doorbell
        for number in range(3):
            broker.enqueue(Message(queue, "noop", (number,), {}, {}))
        assert broker.client.llen(doorbell) == 1  # rung three times, rung once

        started = time.monotonic()
        message = next(consumer)

        assert time.monotonic() - started < 30  # woken by the ring, not by its 60 s timeout
        assert message is not None
        assert list(message.args) == [0]  # the first one enqueued
        assert broker.client.llen(doorbell) == 0
        consumer.ack(message)
    finally:
        consumer.close()


def test_a_consumer_that_took_every_waiting_message_waits_for_the_doorbell(
    broker: DoorbellRedisBroker,
) -> None:
    queue = queue_name(4)
    broker.declare_queue(queue)
    fetch = broker.do_fetch
    fetches: list[int] = []

    def counted(*arguments: Any) -> Any:
        fetches.append(1)
        return fetch(*arguments)

    broker.do_fetch = counted  # type: ignore[attr-defined]
    consumer = broker.consume(queue, prefetch=4, timeout=10_000)
    try:
        broker.enqueue(Message(queue, "noop", (1,), {}, {}))
        broker.client.delete(broker.doorbell(queue))  # as if the ring had woken it
        first = next(consumer)
        assert first is not None
        assert len(fetches) == 1
        # it fetched fewer than it asked for: the queue is empty, so it waits for a ring
        later = threading.Timer(0.2, broker.enqueue, (Message(queue, "noop", (2,), {}, {}),))
        later.start()
        second = next(consumer)
        later.join(timeout=10)
        assert second is not None
        assert list(second.args) == [2]
        assert len(fetches) == 2  # no empty fetch in between
        consumer.ack(first)
        consumer.ack(second)
    finally:
        consumer.close()


def test_a_delayed_message_runs_when_due_though_its_queue_is_idle(redis_url: str) -> None:
    import dramatiq

    from waimai_bridge.pipeline.broker import IDLE_WAIT_MS, make_broker

    broker = make_broker(redis_url)
    ran: list[float] = []
    dramatiq.Actor(
        lambda: ran.append(time.monotonic()), broker=broker, actor_name="tick",
        queue_name="ticks", priority=0, options={},
    )  # fmt: skip
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=IDLE_WAIT_MS)
    worker.start()
    try:
        wait_until(
            lambda: waiting_on_doorbells(redis_url) == 2, 10,
            "both consumers waiting on their doorbells",
        )  # fmt: skip
        sent = time.monotonic()
        broker.enqueue(dramatiq.Message("ticks", "tick", (), {}, {}), delay=300)
        wait_until(lambda: ran, timeout=10)
        # not before it is due; that its consumer comes back for it when it is due, not
        # after its idle wait, is the next test's
        assert ran[0] - sent >= 0.3
    finally:
        worker.stop()
        broker.close()


def test_a_delay_queues_consumer_comes_back_when_a_message_it_handed_out_falls_due(
    broker: DoorbellRedisBroker,
) -> None:
    from dramatiq.common import dq_name

    queue = dq_name(queue_name(7))
    broker.declare_queue(queue_name(7))
    consumer = broker.consume(queue, prefetch=4, timeout=1_000)
    try:
        assert next(consumer) is None  # empty: from now on it waits for the doorbell
        started = time.monotonic()
        assert next(consumer) is None
        assert time.monotonic() - started >= 0.9  # nothing delayed held: its idle timeout
    finally:
        consumer.close()
    consumer = broker.consume(queue, prefetch=4, timeout=60_000)
    try:
        assert next(consumer) is None
        broker.enqueue(Message(queue_name(7), "noop", (), {}, {}), delay=400)
        held = next(consumer)
        assert held is not None
        due_s = held.options["eta"] / 1000
        assert next(consumer) is None  # back for its worker to move the message
        # when it fell due, not after its idle timeout of a minute
        assert due_s - 0.01 <= time.time() < due_s + 30
        consumer.ack(held)
    finally:
        consumer.close()


def test_an_enqueue_reaches_its_queue_after_redis_lost_its_scripts(
    broker: DoorbellRedisBroker,
) -> None:
    queue = queue_name(5)
    broker.declare_queue(queue)
    broker.enqueue(Message(queue, "noop", (1,), {}, {}))
    broker.client.script_flush()  # as a Redis that restarted has none
    broker.enqueue(Message(queue, "noop", (2,), {}, {}))
    assert broker.client.llen(broker.doorbell(queue)) == 1  # each rang it, once is kept
    consumer = broker.consume(queue, prefetch=4, timeout=1_000)
    try:
        received = [next(consumer), next(consumer)]
        assert [list(message.args) for message in received if message] == [[1], [2]]
        for message in received:
            assert message is not None
            consumer.ack(message)
    finally:
        consumer.close()


def test_a_message_is_handed_out_once_its_events_have_gathered(
    broker: DoorbellRedisBroker,
) -> None:
    queue = queue_name(6)
    broker.declare_queue(queue)
    consumer = broker.consume(queue, prefetch=4, timeout=10_000)

    def handed_out(message: Message[Any]) -> tuple[Any, float]:
        broker.enqueue(message)
        got = next(consumer)
        assert got is not None
        consumer.ack(got)
        return got.args[0], current_millis() - message.message_timestamp

    try:
        now = current_millis()
        old: Message[Any] = Message(
            queue, "noop", ("old",), {}, {GATHER_MS: 300}, message_timestamp=now - 9_000
        )
        assert handed_out(old)[0] == "old"  # a backlog's message is old enough already
        assert current_millis() - now < 300
        name, age_ms = handed_out(Message(queue, "noop", ("new",), {}, {GATHER_MS: 300}))
        assert name == "new"
        assert 300 <= age_ms < 3_000
        started = current_millis()
        ahead: Message[Any] = Message(
            queue, "noop", ("ahead",), {}, {GATHER_MS: 300}, message_timestamp=now + 60_000
        )
        assert handed_out(ahead)[0] == "ahead"  # sent by a clock a minute ahead: 300 ms at most
        assert 300 <= current_millis() - started < 3_000
    finally:
        consumer.close()


def gathering(
    tmp_path: Path, gather_releases_ms: int = 0, gather_events_ms: int = 0
) -> tuple[Pipeline, HoldReleases, StubBroker]:
    """A pipeline that gathers releases for ``gather_releases_ms`` and lets a shard's
    events gather for ``gather_events_ms``, on a stub broker."""
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'gather.sqlite3'}"), encoding="utf-8")
    plugins = registry()
    config = load_config(path, plugins)
    broker = StubBroker()
    pipeline = Pipeline(
        database=Database(config.bridge.database_url), broker=broker, registry=plugins,
        config=config, gather_events_ms=gather_events_ms,
    )  # fmt: skip
    return pipeline, HoldReleases(pipeline, gather_ms=gather_releases_ms), broker


def test_the_events_of_new_pushes_gather_and_a_backlogs_do_not(tmp_path: Path) -> None:
    pipeline, _, broker = gathering(tmp_path, gather_events_ms=50)
    pipeline.wake(2)  # new pushes
    pipeline.signals.lower(2)
    pipeline.wake(2, force=True)  # a full batch's rest, or a sweep
    sent = [Message.decode(data) for data in broker.queues[queue_name(2)].queue]
    assert [message.actor_name for message in sent] == [PROCESS_SHARD, PROCESS_SHARD]
    assert sent[0].options[GATHER_MS] == 50
    assert GATHER_MS not in sent[1].options
    (tmp_path / "still").mkdir()
    still, _, _ = gathering(tmp_path / "still")  # the embedded worker's: nothing gathers
    still.wake(2)
    [message] = [Message.decode(data) for data in still.broker.queues[queue_name(2)].queue]
    assert GATHER_MS not in message.options


def test_a_worker_sends_the_releases_it_gathered_together(tmp_path: Path) -> None:
    _, holds, broker = gathering(tmp_path, 60_000)
    first, second = queue_name(shard_of("S001", 4)), queue_name(shard_of("S002", 4))
    assert first != second
    holds.schedule_releases([Hold("testpay", "G-1", "S001", T0 + 1_000)])
    holds.schedule_releases(
        [Hold("testpay", "G-2", "S001", T0 + 3_000), Hold("testpay", "G-3", "S002", T0 + 2_000)]
    )

    def sent(queue: str) -> list[Message[Any]]:
        # due already (T0 is past): straight to the shard queue
        return [Message.decode(data) for data in broker.queues[queue].queue]

    assert sent(first) == sent(second) == []  # still gathering
    holds.send_gathered_releases()
    [to_first] = sent(first)
    [to_second] = sent(second)
    assert to_first.actor_name == to_second.actor_name == RELEASE_HOLDS
    assert to_first.args == ([["testpay", "G-1", "S001"], ["testpay", "G-2", "S001"]],)
    assert to_second.args == ([["testpay", "G-3", "S002"]],)
    holds.send_gathered_releases()  # nothing gathered since: nothing more sent
    assert len(sent(first)) == len(sent(second)) == 1


def test_each_shard_queue_gathers_its_releases_on_its_own(tmp_path: Path) -> None:
    _, holds, broker = gathering(tmp_path, 60_000)
    first, second = queue_name(shard_of("S001", 4)), queue_name(shard_of("S002", 4))
    holds.schedule_releases(
        [Hold("testpay", "Q-1", "S001", T0), Hold("testpay", "Q-2", "S002", T0)]
    )
    holds.send_gathered_releases(first)  # its gathering time is over, not the other's
    [message] = [Message.decode(data) for data in broker.queues[first].queue]
    assert message.args == ([["testpay", "Q-1", "S001"]],)
    assert broker.queues[second].qsize() == 0
    holds.schedule_releases([Hold("testpay", "Q-3", "S002", T0)])
    holds.send_gathered_releases()
    [message] = [Message.decode(data) for data in broker.queues[second].queue]
    assert message.args == ([["testpay", "Q-2", "S002"], ["testpay", "Q-3", "S002"]],)
    assert broker.queues[first].qsize() == 1


def test_gathered_releases_are_sent_when_the_gathering_time_is_over(tmp_path: Path) -> None:
    _, holds, broker = gathering(tmp_path, 50)
    queue = queue_name(shard_of("S001", 4))
    holds.schedule_releases([Hold("testpay", "T-1", "S001", T0)])
    holds.schedule_releases([Hold("testpay", "T-2", "S001", T0)])
    wait_until(lambda: broker.queues[queue].qsize() > 0)
    [message] = [Message.decode(data) for data in broker.queues[queue].queue]
    assert message.args == ([["testpay", "T-1", "S001"], ["testpay", "T-2", "S001"]],)

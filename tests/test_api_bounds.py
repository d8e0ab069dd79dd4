"""Values the database cannot hold are refused at the API, on SQLite and PostgreSQL: a
clear 4xx naming what is wrong, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.sample_plugin import PRICE
from tests.test_pipeline import AUTH, config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.models import Event, PlatformState
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database
from waimai_bridge.store.events import Incoming, apply_events
from waimai_bridge.store.holds import release_holds
from waimai_bridge.store.tables import Order
from waimai_bridge.web.app import create_app

HUGE = "9" * 40


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(database.url), "utf-8")
    plugins = registry()
    with TestClient(create_app(Bridge(load_config(path, plugins), plugins))) as client:
        yield client


OUT_OF_RANGE_IDS = [
    ("GET", f"/api/v1/orders/{HUGE}"),
    ("GET", f"/api/v1/actions/{HUGE}"),
    ("POST", f"/api/v1/actions/{HUGE}/retry"),
    ("GET", f"/api/v1/orders/{2**63}"),
    ("DELETE", f"/api/v1/subscriptions/{HUGE}"),
]
BAD_FILTERS = [
    ({"since": "\u00b2"}, "since"),
    ({"limit": "ten"}, "limit"),
    ({"state": "eaten"}, "state"),
    ({"since": HUGE}, "since"),
    ({"cursor": HUGE}, "cursor"),
]


def test_ids_and_filters_out_of_the_databases_range_are_refused(client: TestClient) -> None:
    for method, path in OUT_OF_RANGE_IDS:
        answer = client.request(method, path, headers=AUTH)
        assert answer.status_code == 400, (path, answer.text)  # SPEC §7.3: an unparsed URL
        assert "less than or equal to" in answer.text
    for params, name in BAD_FILTERS:
        answer = client.get("/api/v1/orders", params=params, headers=AUTH)
        assert answer.status_code == 400, (params, answer.text)
        assert name in answer.text
    assert client.get(f"/api/v1/orders/{2**63 - 1}", headers=AUTH).status_code == 404


UNSTORABLE = [
    ("GET", "/api/v1/orders?store_id=%00", None, "store_id"),
    ("GET", "/api/v1/platform-orders/testpay/%00", None, "platform_order_id"),
    ("GET", "/api/v1/skus?sku_code=a%00", None, "sku_code"),
    ("POST", "/api/v1/platform-orders/testpay/X/actions",
     {"action": "confirm", "idempotency_key": "k\x00"}, "idempotency_key"),
    ("POST", "/api/v1/platform-orders/testpay/X/actions",
     b'{"action": "cancel", "idempotency_key": "k", "reason": "\\ud800"}', "reason"),
    ("POST", "/api/v1/subscriptions", {"url": "http://127.0.0.1:9/x", "secret": "s" * 16 + "\x00"},
     "secret"),
    ("POST", "/api/v1/subscriptions", {"url": "http://127.0.0.1:9/\x00", "secret": "s" * 16},
     "url"),
]  # fmt: skip


def test_text_no_column_holds_is_refused(client: TestClient) -> None:
    for method, path, body, name in UNSTORABLE:
        if isinstance(body, bytes):  # JSON escapes that no encoder would write
            answer = client.request(method, path, content=body, headers={
                **AUTH, "content-type": "application/json"})  # fmt: skip
        else:
            answer = client.request(method, path, json=body, headers=AUTH)
        assert 400 <= answer.status_code < 500, (path, answer.text)
        assert name in answer.text, (path, answer.text)


def test_a_price_kept_before_the_contract_bounded_it_is_shown_as_unknown(
    client: TestClient, database: Database
) -> None:
    accepted = Event(
        platform="testpay", store_id="S001", platform_order_id="OLD", native_code="x",
        idempotency_key="OLD:1", platform_time_ms=0, payload={}, state=PlatformState.ACCEPTED,
    )  # fmt: skip
    with database.transaction() as session:
        apply_events(session, [Incoming(accepted, 0)], accept_hold_ms=0)
        [released] = release_holds(session, [("testpay", "OLD")], accept_hold_ms=0, now_ms=0)
        order = session.get(Order, released.order_id)
        assert order is not None
        line = {**PRICE["items"][0], "sku_code": "S" * 300}
        order.price = {**PRICE, "items": [line]}
    answer = client.get(f"/api/v1/orders/{released.order_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["price"] is None

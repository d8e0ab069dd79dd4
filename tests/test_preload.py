"""The benchmark's preload (``bench/preload.py``): the orders it loads read back through the
order API's own queries, whole and spread over the stores, platforms, states and days, and
the bridge goes on storing new orders after it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bench import preload as loader
from bench.load import PRICE
from bench.templates import KINDS, Templates, make_templates
from tests import testpay
from waimai_bridge.config import load_config
from waimai_bridge.models import OrderState
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Change, InboxEvent, Order, OrderEvent, PlatformOrder
from waimai_bridge.web.app import create_app
from waimai_bridge.web.views import OrderView, find_order, find_platform_order, list_orders

STORES = [f"S{number:03}" for number in range(20)]
PLATFORMS = ["testpay", "alpha", "beta"]
SECRET = "preload-test-secret"
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def templates(postgres_url: str) -> Templates:
    """The template orders, made once (on a scratch database of the test server)."""
    return make_templates(postgres_url, start_ms=time.time_ns() // 1_000_000 - DAY_MS)


@pytest.fixture
def database(empty_postgres_url: str) -> Iterator[Database]:
    """A migrated, empty database of the test's own."""
    database = Database(empty_postgres_url)
    database.migrate()
    yield database
    database.dispose()


def every_order(database: Database) -> list[OrderView]:
    """Every stored order, page by page as the API lists them."""
    found: list[OrderView] = []
    cursor = None
    with database.reading() as session:
        while True:
            page = list_orders(session, cursor=cursor, limit=97)
            found += page.items
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor


def load(
    url: str, orders: int, templates: Templates, *, seed: int = 1, days: float = 30
) -> loader.Loaded:
    return loader.preload(
        url, orders, stores=STORES, platforms=PLATFORMS, shards=4, days=days, seed=seed,
        templates=templates, progress=lambda _: None,
    )  # fmt: skip


def ms(moment: str) -> int:
    """An API time in epoch milliseconds."""
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


def test_preloaded_orders_read_back_whole_through_the_order_api(
    database: Database, empty_postgres_url: str, templates: Templates
) -> None:
    before = time.time_ns() // 1_000_000
    loaded = load(empty_postgres_url, 300, templates)
    orders = every_order(database)
    assert loaded.orders == len(orders) == 300
    ids = [order.id for order in orders]
    assert len(set(ids)) == 300
    assert min(ids) == loaded.first_order_id
    assert max(ids) == loaded.last_order_id
    assert len({(order.platform, order.platform_order_id) for order in orders}) == 300
    assert {order.store_id for order in orders} == set(STORES)
    assert {order.platform for order in orders} == set(PLATFORMS)
    states = Counter(order.state for order in orders)
    assert states.most_common(1)[0][0] is OrderState.COMPLETED
    assert states[OrderState.COMPLETED] < 300
    assert len(states) >= 4
    for order in orders:
        assert order.price is not None
        assert [item.line for item in order.items] == [1, 2]
        assert before - 30 * DAY_MS <= ms(order.created_at) <= ms(order.updated_at) <= before
    with database.reading() as session:
        for order in orders[::10]:
            shown = find_order(session, order.id)
            assert shown is not None
            assert shown.events
            assert shown.events[0].native_code == "order.created"
            assert shown.model_dump(exclude={"events"}) == order.model_dump(exclude={"events"})
            seen = find_platform_order(session, order.platform, order.platform_order_id)
            assert seen is not None
            assert seen.stored
            assert seen.order_id == order.id


def test_only_what_retention_keeps_is_loaded(
    database: Database, empty_postgres_url: str, templates: Templates
) -> None:
    now = time.time_ns() // 1_000_000
    load(empty_postgres_url, 300, templates, days=60)
    with database.reading() as session:
        oldest_inbox = session.scalar(select(func.min(InboxEvent.received_at_ms)))
        oldest_change = session.scalar(select(func.min(Change.created_at_ms)))
        payloads = session.execute(select(OrderEvent.received_at_ms, OrderEvent.payload)).all()
        pending = session.scalar(select(func.count()).where(InboxEvent.status != "done"))
    # the rows of an order are within minutes of its creation
    assert oldest_inbox is not None
    assert oldest_inbox >= now - 7 * DAY_MS - 600_000
    assert oldest_change is not None
    assert oldest_change >= now - 2 * DAY_MS - 600_000
    assert pending == 0
    old = [payload for received, payload in payloads if received < now - 31 * DAY_MS]
    young = [payload for received, payload in payloads if received > now - 29 * DAY_MS]
    assert old
    assert young
    assert all(payload == {} for payload in old)
    assert all(payload != {} for payload in young)


def test_the_bridge_stores_new_orders_after_a_preload_and_a_second_preload_adds_to_it(
    database: Database, empty_postgres_url: str, templates: Templates, tmp_path: Path
) -> None:
    first = load(empty_postgres_url, 200, templates)
    new_id = _push_an_order(empty_postgres_url, tmp_path)
    assert new_id > first.last_order_id
    second = load(empty_postgres_url, 50, templates, seed=2)
    assert second.first_order_id > new_id
    orders = every_order(database)
    assert len(orders) == 251
    assert len({order.id for order in orders}) == 251
    with database.reading() as session:
        keys = session.execute(select(OrderEvent.platform, OrderEvent.idempotency_key)).all()
        stored = session.scalar(select(func.count()).select_from(PlatformOrder))
        counted = session.scalar(select(func.count()).select_from(Order))
    assert len(set(keys)) == len(keys)
    assert stored == counted == 251
    assert new_id in {order.id for order in orders}


def _push_an_order(url: str, folder: Path) -> int:
    """A new order pushed through the webhook of an embedded bridge on ``url``; its id."""
    path = folder / "bridge.toml"
    path.write_text(
        f"""
[bridge]
database_url = "{url}"
broker_url = ""
accept_hold_seconds = 0

[platforms.testpay]
secret = "{SECRET}"

[stores.S000]
testpay = {{ shop = "100000" }}
""",
        encoding="utf-8",
    )
    registry = PluginRegistry.discover(blocked=())
    registry.add(testpay.NAME, testpay)
    bridge = Bridge(load_config(path, registry), registry)
    now = time.time_ns() // 1_000_000
    with TestClient(create_app(bridge)) as client:
        for step, code in enumerate(("order.created", "order.accepted")):
            body = testpay.push(f"new:{step}", "NEW-1", code, now, shop="100000", price=PRICE)
            headers = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
            assert (
                client.post("/webhooks/testpay", content=body, headers=headers).status_code == 200
            )
        deadline = time.monotonic() + 30
        while True:
            with bridge.database.reading() as session:
                seen = find_platform_order(session, "testpay", "NEW-1")
            if seen is not None and seen.order_id is not None:
                return seen.order_id
            assert time.monotonic() < deadline, "the new order was not stored"
            time.sleep(0.05)


@settings(max_examples=30, deadline=None)
@given(
    orders=st.integers(1, 400),
    days=st.floats(1, 60),
    seed=st.integers(0, 2**32),
)
def test_a_plan_puts_orders_oldest_first_in_the_past_and_in_progress_ones_recent(
    templates: Templates, orders: int, days: float, seed: int
) -> None:
    now = 1_800_000_000_000
    wanted = {table: templates.columns[table] for table in templates.columns}
    makers = loader._makers(templates, wanted)
    spans = loader._spans_ms(makers)
    plan = loader._plan(templates, spans, orders, stores=3, platforms=2, days=days,
                        now_ms=now, seed=seed)  # fmt: skip
    assert plan.created == sorted(plan.created)
    assert len(plan.kinds) == len(plan.stores) == len(plan.platforms) == orders
    for kind, created in zip(plan.kinds, plan.created, strict=True):
        template = templates.orders[kind]
        assert created + spans[kind] < now
        if template.kind.in_progress:
            assert created >= now - loader.RECENT_MINUTES * 60_000
        else:
            assert created >= now - days * DAY_MS
    assert {KINDS[kind].name for kind in plan.kinds} <= {name for name, _ in loader.MIX}

"""End to end through real processes: ``waimai-bridge serve`` (embedded), ``serve`` +
``worker`` on Redis and PostgreSQL, and recovery from a killed worker and a lost broker."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select

from tests import testpay
from tests.processes import (
    bridge_command,
    environment,
    free_port,
    free_ports,
    plugin_site,
    processes,
    redis_command,
    wait_for_port,
    wait_until,
)
from tests.sample_plugin import PRICE
from tests.test_pipeline import SECRET, TOKEN, config_text
from waimai_bridge.cli.processes import WORKER_NICENESS
from waimai_bridge.store.tables import InboxEvent, OrderEvent

T0 = 1_716_181_200_000


@dataclass(frozen=True)
class Template:
    """A lifecycle and the order it must end as."""

    codes: tuple[str, ...]
    state: str
    rider_state: str | None
    refunded: int


TEMPLATES = (
    Template(
        ("order.created", "order.accepted", "kitchen.preparing", "rider.at_store",
         "rider.delivering", "rider.delivered", "order.completed"),
        "completed", "delivered", 0,
    ),
    Template(
        ("order.created", "order.accepted", "rider.delivering", "order.completed",
         "refund.requested", "refund.agreed:partial"),
        "partially_refunded", "delivering", 500,
    ),
    Template(
        ("order.created", "order.accepted", "rider.delivering", "refund.requested",
         "order.completed"),
        "refunding", "delivering", 0,
    ),
    Template(
        ("order.created", "order.accepted", "kitchen.preparing", "cancel.requested",
         "cancel.agreed"),
        "refunded", None, PRICE["user_paid"],
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Traffic:
    """Signed push bodies in sending order (duplicates included) and the expected orders."""

    pushes: list[bytes]
    expected: dict[str, tuple[str, str | None, int]]
    events: dict[str, int]


def traffic(orders: int, *, seed: int = 7) -> Traffic:
    """``orders`` lifecycles over two stores, interleaved at random, 10% sent twice."""
    generator = random.Random(seed)
    queues: list[list[bytes]] = []
    expected: dict[str, tuple[str, str | None, int]] = {}
    events: dict[str, int] = {}
    for number in range(orders):
        template = TEMPLATES[number % len(TEMPLATES)]
        order = f"E{number}"
        shop = "100001" if number % 2 else "100002"
        bodies = []
        for position, code in enumerate(template.codes):
            name, _, flag = code.partition(":")
            extra: dict[str, Any] = {"price": PRICE} if name == "order.created" else {}
            if flag == "partial":
                extra |= {"partial": True, "refund_fen": 500}
            bodies.append(
                testpay.push(
                    f"{order}:{position}", order, name, T0 + position * 1000, shop=shop, **extra
                )
            )
        queues.append(bodies)
        expected[order] = (template.state, template.rider_state, template.refunded)
        events[order] = len(bodies)
    pushes: list[bytes] = []
    while queues:
        queue = generator.choice(queues)
        body = queue.pop(0)
        pushes.append(body)
        if generator.random() < 0.1:
            pushes.append(body)
        if not queue:
            queues.remove(queue)
    return Traffic(pushes, expected, events)


def write_config(folder: Path, database_url: str, broker_url: str = "") -> Path:
    path = folder / "bridge.toml"
    path.write_text(config_text(database_url, broker=broker_url, resend_after=2), "utf-8")
    return path


def post_all(base: str, pushes: list[bytes]) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for body in pushes:
            answer = client.post(
                "/webhooks/testpay",
                content=body,
                headers={testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)},
            )
            assert (answer.status_code, answer.text) == (200, '{"ok":true}')


def stored_orders(base: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        while True:
            params: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
            page = client.get("/api/v1/orders", params=params).json()
            found |= {order["platform_order_id"]: order for order in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                return found


def settled(base: str, expected: dict[str, tuple[str, str | None, int]]) -> bool:
    orders = stored_orders(base)
    return {
        name: (order["state"], order["rider_state"], order["refunded_amount"])
        for name, order in orders.items()
    } == expected


def assert_each_event_applied_once(base: str, events: dict[str, int]) -> None:
    orders = stored_orders(base)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for name, count in events.items():
            detail = client.get(f"/api/v1/orders/{orders[name]['id']}").json()
            keys = [event["native_code"] for event in detail["events"]]
            assert len(keys) == count, (name, keys)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return plugin_site(tmp_path / "site")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


def test_embedded_serve_turns_signed_pushes_into_orders(
    tmp_path: Path, site: Path, logs: Path
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'embedded.sqlite3'}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    plan = traffic(24)
    with processes(logs) as start:
        start("serve", bridge_command(config, "serve", "--port", str(port)), environment(site))
        wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, "serve healthy")
        post_all(base, plan.pushes)
        wait_until(lambda: settled(base, plan.expected), 60, "every order in its expected state")
        assert_each_event_applied_once(base, plan.events)


def test_serve_and_workers_on_redis_and_postgresql(
    tmp_path: Path, site: Path, logs: Path, empty_postgres_url: str, redis_url: str
) -> None:
    config = write_config(tmp_path, empty_postgres_url, redis_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    plan = traffic(40)
    env = environment(site)
    metrics = free_ports(2)
    with processes(logs) as start:
        migrate = start("migrate", bridge_command(config, "migrate"), env)
        assert migrate.popen.wait(timeout=60) == 0, migrate.output()
        start("serve", bridge_command(config, "serve", "--port", str(port)), env)
        options = ["--processes", "2", "--threads", "2", "--metrics-port", str(metrics)]
        worker = start("worker", bridge_command(config, "worker", *options, "--nice", "7"), env)
        wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, "serve healthy")
        post_all(base, plan.pushes)
        wait_until(lambda: settled(base, plan.expected), 90, "every order in its expected state")
        assert_each_event_applied_once(base, plan.events)
        # each worker process serves its own metrics (either may have taken every message);
        # together they counted every event
        scraped = [worker_metrics(metrics + index) for index in range(2)]
        assert sum(figures["applied"] for figures in scraped) == sum(plan.events.values())
        assert sum(figures["commits"] for figures in scraped) == sum(plan.events.values())
        # the worker processes yield the CPU to the web process
        children = Path(f"/proc/{worker.popen.pid}/task/{worker.popen.pid}/children")
        workers = [worker.popen.pid, *map(int, children.read_text().split())]
        assert len(workers) == 3
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers] == [7, 7, 7]


def worker_metrics(port: int) -> dict[str, float]:
    """Events a worker process applied, and push-to-commit latencies it observed, from its
    metrics endpoint."""
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert answer.status_code == 200
    families = list(text_string_to_metric_families(answer.text))
    assert "waimai_push_to_commit_seconds" in {family.name for family in families}
    samples = [sample for family in families for sample in family.samples]
    return {
        "applied": sum(
            sample.value
            for sample in samples
            if sample.name == "waimai_events_processed_total"
            and sample.labels.get("outcome") == "applied"
        ),
        "commits": sum(
            sample.value
            for sample in samples
            if sample.name == "waimai_push_to_commit_seconds_count"
        ),
    }


def test_a_killed_worker_and_a_lost_broker_lose_no_acked_event(
    tmp_path: Path, site: Path, logs: Path, empty_postgres_url: str
) -> None:
    redis_port = free_port()
    redis_folder = tmp_path / "redis"
    redis_folder.mkdir()
    broker_url = f"redis://127.0.0.1:{redis_port}/0"
    config = write_config(tmp_path, empty_postgres_url, broker_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    plan = traffic(40, seed=11)
    thirds = len(plan.pushes) // 3
    env = environment(site)
    with processes(logs) as start:
        redis = start("redis", redis_command(redis_port, redis_folder), env)
        wait_for_port(redis_port)
        assert start("migrate", bridge_command(config, "migrate"), env).popen.wait(timeout=60) == 0
        start("serve", bridge_command(config, "serve", "--port", str(port)), env)
        worker = start("worker", bridge_command(config, "worker", "--threads", "2"), env)
        wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, "serve healthy")
        wait_until(
            lambda: os.getpriority(os.PRIO_PROCESS, worker.popen.pid) == WORKER_NICENESS,
            30,
            "the worker at its default niceness",
        )

        post_all(base, plan.pushes[:thirds])
        worker.kill()  # mid-stream: whatever it held is lost with it
        post_all(base, plan.pushes[thirds : 2 * thirds])
        redis.kill()  # the broker dies with every queued message
        post_all(base, plan.pushes[2 * thirds :])  # still ACKed: the inbox has them
        redis = start("redis-again", redis_command(redis_port, redis_folder), env)
        wait_for_port(redis_port)
        start("worker-again", bridge_command(config, "worker", "--threads", "2"), env)

        wait_until(lambda: settled(base, plan.expected), 120, "every order in its expected state")
        assert_each_event_applied_once(base, plan.events)

    engine = create_engine(empty_postgres_url)
    try:
        with engine.connect() as connection:
            pending = connection.execute(
                select(func.count()).select_from(InboxEvent).where(InboxEvent.status != "done")
            ).scalar_one()
            applied = connection.execute(select(func.count()).select_from(OrderEvent)).scalar_one()
    finally:
        engine.dispose()
    assert pending == 0
    assert applied == sum(plan.events.values())

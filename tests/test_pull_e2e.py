"""Pushes the platforms never send, end to end: ``waimai-bridge serve`` and ``worker`` as
processes on Redis and PostgreSQL, the Eleme and Meituan fakes failing to send a share of
a lunch service's pushes (the demo channels' orders), the bridge pulling (Eleme) and
reading orders again (both) until every order ends where it does with every push sent;
the lost pushes, sent late after all, change nothing; a confirm whose answer is lost is
verified on the order and done with one platform call."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from waimai_bridge_eleme.testing import FakeAnswer

from tests.processes import (
    bridge_command,
    environment,
    free_port,
    processes,
    wait_until,
)
from waimai_bridge.demo import channel as channels
from waimai_bridge.demo.channel import DemoChannel, DemoFake, DemoOrder, DemoPush
from waimai_bridge.demo.replay import Drops, Play, Replay, recovered, settle
from waimai_bridge.demo.schedule import Timeline, lunch_start_ms, schedule
from waimai_bridge.demo.stack import to_toml
from waimai_bridge.demo.summary import outcomes
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import OrderEvent

TOKEN = "pull-e2e-api-token-0001"
STORES = ("S001", "S002")
ORDERS_PER_STORE = 6
DROP = 0.3
TIMEOUTS = {"eleme": {"timeout_seconds": 1}, "meituan": {"api_timeout_seconds": 1}}
"""Platform calls given up after a second: an answer slower than that is lost."""
CONFIRM = "eleme.order.confirmOrderLite"


def _plays(found: list[DemoChannel], run: int) -> list[Play]:
    plays = []
    for chan in found:
        for number, store_id in enumerate(STORES, start=1):
            rng = random.Random(f"pull-e2e:{chan.platform}:{store_id}")
            for raw in chan.lunch(store_id, number, ORDERS_PER_STORE, rng, run=run,
                                  refund_approval=False, unmapped_sku=False):  # fmt: skip
                order = raw if isinstance(raw, DemoOrder) else DemoOrder.model_validate(raw)
                plain = raw.model_dump(mode="json") if isinstance(raw, DemoOrder) else raw
                plays.append(Play(chan, plain, order))
    return plays


def test_lost_pushes_are_pulled_and_fetched_and_their_late_delivery_changes_nothing(
    tmp_path: Path, empty_postgres_url: str, redis_url: str
) -> None:
    found, problems = channels.discover(["eleme", "meituan"])
    assert not problems
    assert [chan.platform for chan in found] == ["eleme", "meituan"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        fakes: dict[str, DemoFake] = {}
        for chan in found:
            manager = chan.fake()
            assert manager is not None
            fakes[chan.platform] = stack.enter_context(manager)
        config = tmp_path / "bridge.toml"
        config.write_text(to_toml({
            "bridge": {
                "database_url": empty_postgres_url, "broker_url": redis_url,
                "public_base_url": base, "shards": 2, "accept_hold_seconds": 2,
                "api_tokens": [TOKEN], "sweep_interval_seconds": 0.5,
                "resend_after_seconds": 2, "pull_interval_seconds": 1,
                "refetch_after_minutes": 0.05,
            },
            "platforms": {
                c.platform: {**c.settings(fakes[c.platform].api_base), **TIMEOUTS[c.platform]}
                for c in found
            },
            "stores": {
                store: {c.platform: c.binding(store, n) for c in found}
                for n, store in enumerate(STORES, start=1)
            },
        }), "utf-8")  # fmt: skip
        start = stack.enter_context(processes(tmp_path))
        env = environment(tmp_path)
        assert start("migrate", bridge_command(config, "migrate"), env).popen.wait(60) == 0
        start("serve", bridge_command(config, "serve", "--port", str(port)), env)
        start("worker", bridge_command(config, "worker", "--threads", "2"), env)
        wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, "serve healthy")

        plays = _plays(found, run=int(time.time()))
        timeline = Timeline.for_orders(len(plays), hold_ms=2000)
        sends = schedule([play.order for play in plays], timeline, random.Random(7))
        span_ms = sends[-1].at_ms + 10_000
        lunch = lunch_start_ms(dt.datetime.now().astimezone(), span_ms)
        drops = Drops(DROP, random.Random(5), fakes, frozenset({"eleme"}))
        client = stack.enter_context(
            httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
        )
        replay = Replay(client, base, lunch, drops)
        replay.play(sends, plays, lambda _: None)
        assert replay.refused == []
        assert drops.dropped >= 5, "the platforms lost pushes"

        database = Database(empty_postgres_url)
        stack.callback(database.dispose)
        assert recovered(database, plays, timeout_s=60), _wrong(database, plays)
        wanted = _wanted(plays)
        assert settle(database, wanted)
        stored = _stored(client, plays)
        assert stored, "some orders are stored"
        for order in stored:  # items and prices, even where the first push was lost
            assert order["price"] is not None, order["platform_order_id"]
            assert order["items"], order["platform_order_id"]
        events = _events(database)

        # the platforms send what they lost after all: Eleme's lost pushes were all pulled,
        # with the keys of these very pushes, so none of them applies again
        late: dict[str, list[DemoPush]] = {"eleme": [], "meituan": []}
        for push in drops.lost:
            late[push.path.split("/")[2]].append(push)
        assert late["eleme"], "Eleme lost pushes"
        assert late["meituan"], "Meituan lost pushes"
        _send(client, late["eleme"])
        assert settle(database, wanted)
        assert _events(database) == events, "a pulled push applied again when it came late"
        # Meituan's were read again (an order cancelled within its hold is not: its lost
        # first push is news); either way no order moves
        _send(client, late["meituan"])
        assert settle(database, wanted)
        assert _events(database) - events <= len(late["meituan"])
        assert recovered(database, plays, timeout_s=1), _wrong(database, plays)

        _a_lost_answer_is_verified(client, found[0], fakes["eleme"])


def _a_lost_answer_is_verified(client: httpx.Client, eleme: DemoChannel, fake: DemoFake) -> None:
    """A confirm whose answer the network loses after Eleme acted on it: verified on the
    order, done, one call."""
    (raw,) = eleme.lunch("S001", 1, 1, random.Random(9), run=int(time.time()) + 1,
                         refund_approval=False, unmapped_sku=False)  # fmt: skip
    order = raw if isinstance(raw, DemoOrder) else DemoOrder.model_validate(raw)
    plain = raw.model_dump(mode="json") if isinstance(raw, DemoOrder) else raw
    built = eleme.push(plain, order.placing[0], int(time.time() * 1000), str(client.base_url))
    push = built if isinstance(built, DemoPush) else DemoPush.model_validate(built)
    _send(client, [push])
    running = fake.eleme  # type: ignore[attr-defined]
    running.script(CONFIRM, FakeAnswer.slow(3))  # past the plugin's 1 s: the answer is lost
    asked = client.post(f"/api/v1/platform-orders/eleme/{order.platform_order_id}/actions",
                        json={"action": "confirm", "idempotency_key": "lost-answer-1"})  # fmt: skip
    assert asked.status_code == 202, asked.text
    view = wait_until(lambda: _ended(client, asked.json()["id"]), 60, "the confirm ended")
    assert (view["status"], view["attempts"], view["verified"]) == ("done", 1, True)
    assert len([call for call in running.calls if call.action == CONFIRM]) == 1


def _ended(client: httpx.Client, action_id: int) -> dict[str, object] | None:
    view: dict[str, object] = client.get(f"/api/v1/actions/{action_id}").json()
    return None if view["status"] == "pending" else view


def _wanted(plays: list[Play]) -> dict[str, list[str]]:
    wanted: dict[str, list[str]] = {}
    for play in plays:
        wanted.setdefault(play.channel.platform, []).append(play.order.platform_order_id)
    return wanted


def _stored(client: httpx.Client, plays: list[Play]) -> list[dict[str, object]]:
    found = []
    for play in plays:
        page = client.get("/api/v1/orders", params={
            "platform": play.channel.platform, "platform_order_id": play.order.platform_order_id,
        }).json()  # fmt: skip
        for item in page["items"]:
            found.append(client.get(f"/api/v1/orders/{item['id']}").json())
    return found


def _send(client: httpx.Client, pushes: list[DemoPush]) -> None:
    for push in pushes:
        answer = client.request(push.method, push.path, content=push.body or None,
                                headers=push.headers)  # fmt: skip
        assert answer.status_code == 200, answer.text


def _events(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(OrderEvent)) or 0)


def _wrong(database: Database, plays: list[Play]) -> list[str]:
    with database.transaction() as session:
        seen = {(o.platform, o.platform_order_id): o.state
                for o in outcomes(session, _wanted(plays))}  # fmt: skip
    return [
        f"{play.channel.platform} {play.order.platform_order_id} ({play.order.story}): "
        f"{seen.get((play.channel.platform, play.order.platform_order_id))}, expected "
        f"{play.order.expected_state}"
        for play in plays
        if seen.get((play.channel.platform, play.order.platform_order_id))
        != (None if play.order.expected_state is None else play.order.expected_state.value)
    ]


pytestmark = pytest.mark.timeout(240)

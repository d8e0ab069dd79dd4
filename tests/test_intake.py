"""The web's group commit (:mod:`waimai_bridge.pipeline.intake`): pushes that arrive together
share one inbox write, and a push the database refuses does not fail the others."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text

from tests import testpay
from tests.test_pipeline import SECRET, config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.pipeline import intake
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.tables import InboxEvent
from waimai_bridge.web.app import create_app

T0 = 1_716_181_200_000


@contextmanager
def running(url: str, folder: Path) -> Iterator[Bridge]:
    """A bridge on a fresh database at ``url``, with the in-process broker."""
    path = folder / "bridge.toml"
    path.write_text(config_text(url), "utf-8")
    plugins = registry()
    bridge = Bridge(load_config(path, plugins), plugins)
    bridge.database.migrate()
    try:
        yield bridge
    finally:
        bridge.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def bridge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bridge]:
    """A bridge on a fresh database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'intake.sqlite3'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    with running(url, tmp_path) as bridge:
        yield bridge


def signed(key: str, order: str) -> tuple[bytes, dict[str, str]]:
    body = testpay.push(key, order, "order.created", T0)
    return body, {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}


def post_together(bridge: Bridge, pushes: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    """POST every push at once to the bridge's app; the status of each."""

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=create_app(bridge, run_worker=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as client:
            answers = await asyncio.gather(
                *(
                    client.post("/webhooks/testpay", content=body, headers=headers)
                    for body, headers in pushes
                )
            )
        return [answer.status_code for answer in answers]

    return asyncio.run(run())


def inbox_keys(bridge: Bridge) -> set[str]:
    with bridge.database.transaction() as session:
        return set(session.execute(select(InboxEvent.idempotency_key)).scalars())


def counting_inbox_writes(bridge: Bridge) -> Callable[[], int]:
    """How many writes to the inbox there were from now on: on SQLite, the INSERTs through
    the bridge's engine; on PostgreSQL, the transactions that wrote its rows (the web writes
    them on a connection of its own)."""
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO inbox"):
            inserts.append(statement)

    if bridge.database.dialect == "sqlite":
        event.listen(bridge.database.engine, "before_cursor_execute", seen)
        return lambda: len(inserts)

    def transactions() -> int:
        with bridge.database.transaction() as session:
            return session.scalar(text("SELECT count(DISTINCT xmin::text) FROM inbox")) or 0

    return transactions


def test_pushes_that_arrive_together_share_one_write(bridge: Bridge) -> None:
    writes = counting_inbox_writes(bridge)
    pushes = [signed(f"G{n}:0", f"G{n}") for n in range(30)]
    pushes += pushes[:5]  # redeliveries, in the same breath

    assert post_together(bridge, pushes) == [200] * 35
    assert inbox_keys(bridge) == {f"G{n}:0" for n in range(30)}
    assert 1 <= writes() < len(pushes) / 2  # grouped, not one write per push
    with bridge.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 30


def test_a_push_the_database_refuses_fails_alone(empty_postgres_url: str, tmp_path: Path) -> None:
    # PostgreSQL's text cannot hold a NUL character (SQLite stores it)
    good = [signed(f"N{n}:0", f"N{n}") for n in range(10)]
    bad = signed("N-bad\x00:0", "N-bad")

    with running(empty_postgres_url, tmp_path) as bridge:
        statuses = post_together(bridge, [*good[:5], bad, *good[5:]])
        stored = inbox_keys(bridge)

    assert statuses[5] == 400  # refused, not "try again later": it can never be stored
    assert statuses[:5] + statuses[6:] == [200] * 10
    assert stored == {f"N{n}:0" for n in range(10)}


class GatheringUntilOver:
    """:mod:`asyncio` as the intake sees it, but for its sleep: the shards to wake gather
    until the test sets :attr:`over`, however long the writes take."""

    def __init__(self) -> None:
        self.over = asyncio.Event()
        self.gatherings: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.gatherings.append(delay)
        await asyncio.wait_for(self.over.wait(), 30)


def test_the_shards_to_wake_gather_before_each_wake_up_call(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    gathering = GatheringUntilOver()
    monkeypatch.setattr(intake, "asyncio", gathering)
    calls: list[set[int]] = []
    wake = bridge.pipeline.wake

    def noted(*shards: int, force: bool = False) -> None:
        calls.append(set(shards))
        wake(*shards, force=force)

    monkeypatch.setattr(bridge.pipeline, "wake", noted)
    shops = ["100001", "100002", "100001", "100002"]
    bodies = [testpay.push(f"W{n}:0", f"W{n}", "order.created", T0, shop=shop)
              for n, shop in enumerate(shops)]  # fmt: skip

    async def run() -> None:
        transport = httpx.ASGITransport(app=create_app(bridge, run_worker=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as client:
            for body in bodies:  # one after another: a write each
                headers = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
                answer = await client.post("/webhooks/testpay", content=body, headers=headers)
                assert answer.status_code == 200
            assert calls == []  # still gathering
            gathering.over.set()
            for _ in range(1000):  # 10 s at most
                if calls:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(run())
    assert calls == [{bridge.pipeline.shard_of("S001"), bridge.pipeline.shard_of("S002")}]
    assert gathering.gatherings == [intake.WAKE_GATHER_S]  # one gathering, for them all

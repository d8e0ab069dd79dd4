"""The pipeline's messages where mutation testing found them unchecked: what is sent to
which queue and when (wake-ups, hold releases), what a broker that is down leaves for the
sweep, the broker's retries, and the sweeper's own round.

A worker's bridge on SQLite and on PostgreSQL, its clock in the test's hands and nothing
consuming its queues: each test calls the actors itself. Its broker is the in-process one,
or a Redis server of the test's own whose commands can be refused for a while (as a Redis
that is gone or full refuses them).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Broker, Message, Middleware
from dramatiq.common import dq_name, q_name
from dramatiq.middleware import Retries, TimeLimit

from tests.processes import free_port, processes, redis_command, wait_for_port, wait_until
from tests.test_hold import HOLD_MS, STORE, T0, Worker
from tests.test_pipeline import config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.pipeline.broker import DoorbellRedisBroker, make_broker
from waimai_bridge.pipeline.holds import RELEASE_HOLDS, Hold
from waimai_bridge.pipeline.shards import DELIVERY_QUEUE, PROCESS_SHARD, queue_name
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database

RESEND_MS = 500
"""How long the sweeper of :func:`config_text`'s bridge lets a message be lost."""

Sent = tuple[str, str, tuple[Any, ...], int | None]
"""A message the broker took: its actor, queue, arguments and delay (ms)."""


class Taken(Middleware):
    """Records the messages the broker took (:attr:`sent`)."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def after_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        self.sent.append((message.actor_name, q_name(message.queue_name), message.args, delay))

    def taken(self) -> list[Sent]:
        """The messages taken since the last look."""
        sent, self.sent = self.sent, []
        return sent


class OwnRedis:
    """A Redis server of the test's own, whose commands can be refused to the bridge."""

    def __init__(self, start: Callable[..., Any], folder: Path) -> None:
        port = free_port()
        start("redis", redis_command(port, folder), os.environ.copy())
        wait_for_port(port)
        self.url = f"redis://127.0.0.1:{port}/0"
        self._admin = redis.Redis(port=port)
        self._admin.acl_setuser("admin", enabled=True, passwords=["+admin"], keys=["*"],
                                channels=["*"], commands=["+@all"])  # fmt: skip
        self._admin = redis.Redis(port=port, username="admin", password="admin")

    def refuse(self, *commands: str) -> None:
        """The bridge's commands ``commands`` fail from now on (``@all``: every one)."""
        self._admin.acl_setuser("default", enabled=True, nopass=True, keys=["*"],
                                channels=["*"], commands=["+@all", *(f"-{c}" for c in commands)],
                                reset=True)  # fmt: skip

    def take_all(self) -> None:
        """The bridge's commands work again."""
        self.refuse()


@contextmanager
def running_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis server of the test's own, running until the block ends."""
    (tmp_path / "redis").mkdir()
    with processes(tmp_path) as start:
        yield OwnRedis(start, tmp_path / "redis")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with running_redis(tmp_path) as server:
        yield server


@contextmanager
def working(database_url: str, tmp_path: Path, *, broker: str = "", extra: str = "") -> Iterator[
    tuple[Worker, Taken]
]:  # fmt: skip
    """A worker's bridge whose clock reads :attr:`Worker.now`, and what its broker took."""
    path = tmp_path / "bridge.toml"
    text = config_text(database_url, hold=HOLD_MS // 1000, broker=broker, bridge_extra=extra)
    path.write_text(text, "utf-8")
    plugins = registry()
    holder: list[Worker] = []
    bridge = Bridge(load_config(path, plugins), plugins, clock=lambda: holder[0].now)
    taken = Taken()
    bridge.broker.add_middleware(taken)
    holder.append(Worker(bridge))
    try:
        yield holder[0], taken
    finally:
        bridge.stop()


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[tuple[Worker, Taken]]:
    with working(database.url, tmp_path) as made:
        yield made


@pytest.fixture
def on_redis(
    database: Database, tmp_path: Path, own_redis: OwnRedis
) -> Iterator[tuple[Worker, Taken]]:
    """The worker's bridge on the test's own Redis."""
    with working(database.url, tmp_path, broker=own_redis.url) as made:
        yield made


def logged(caplog: pytest.LogCaptureFixture, module: str) -> list[str]:
    """What the pipeline's ``module`` logged."""
    name = f"waimai_bridge.pipeline.{module}"
    return [record.getMessage() for record in caplog.records if record.name == name]


# --------------------------------------------------------------------------- wake-ups


def test_a_wake_up_the_broker_refused_leaves_the_shard_to_be_woken_again(
    on_redis: tuple[Worker, Taken], own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, taken = on_redis[0].bridge, on_redis[1]
    shard = bridge.pipeline.shard_of(STORE)
    own_redis.refuse("evalsha", "eval")  # its signal can be raised, its message not sent
    with caplog.at_level(logging.WARNING):
        bridge.pipeline.wake(shard)  # what a push's commit does: it stands, whatever happens
    assert logged(caplog, "messages") == [
        f"could not queue {PROCESS_SHARD}({shard},); the sweeper will"
    ]
    own_redis.take_all()
    bridge.pipeline.wake(shard)  # the signal was lowered again: this one is sent
    assert [message[:3] for message in taken.taken()] == [
        (PROCESS_SHARD, queue_name(shard), (shard,))
    ]
    bridge.pipeline.wake(shard)  # and its signal is up now
    assert taken.taken() == []
    caplog.clear()
    bridge.pipeline.signals.lower(shard)
    own_redis.refuse("evalsha", "eval", "del")  # nor can the signal be lowered again
    with caplog.at_level(logging.WARNING):
        bridge.pipeline.wake(shard)
    assert logged(caplog, "messages")[1:] == [f"could not lower the signal of shard {shard}"]
    assert all(record.exc_info for record in caplog.records if record.name.endswith("messages"))


def test_a_wake_up_while_the_brokers_redis_is_gone_is_left_to_the_sweep(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = f"sqlite:///{tmp_path / 'gone.sqlite3'}"
    gone = working(database, tmp_path, broker="redis://127.0.0.1:1/0")
    with gone as (worker, _), caplog.at_level(logging.WARNING):
        worker.bridge.pipeline.wake(3, 1)
    assert logged(caplog, "messages") == ["could not raise the signals of shards (3, 1)"]
    assert all(record.exc_info for record in caplog.records if record.name.endswith("messages"))


def test_work_committed_while_the_broker_is_down_is_kept_for_the_sweep(
    on_redis: tuple[Worker, Taken], own_redis: OwnRedis
) -> None:
    worker, taken = on_redis
    bridge = worker.bridge
    worker.receive("A", "order.accepted", T0)
    own_redis.refuse("evalsha", "eval")
    worker.apply()  # applied; the release of its hold is gathered ...
    bridge.holds.send_gathered_releases()  # ... and lost
    assert worker.inbox()["A:order.accepted"] == ("done", None)
    own_redis.take_all()
    assert taken.taken() == []
    worker.now = T0 + HOLD_MS + RESEND_MS
    assert bridge.sweeper.sweep().releases == 0  # not overdue long enough yet
    worker.now += 1
    assert bridge.sweeper.sweep().releases == 1
    bridge.holds.send_gathered_releases()
    assert taken.taken() == [
        (RELEASE_HOLDS, bridge.pipeline.queue_of(STORE), ([["testpay", "A", STORE]],), None)
    ]


# --------------------------------------------------------------------------- releases


def test_releases_go_one_message_per_shard_queue_due_when_its_last_hold_ends(
    worker: tuple[Worker, Taken],
) -> None:
    bridge, taken = worker[0].bridge, worker[1]
    now = worker[0].now
    first, second = bridge.pipeline.queue_of("S001"), bridge.pipeline.queue_of("S002")
    assert first != second
    bridge.holds.schedule_releases(
        [
            Hold("testpay", "R-1", "S001", now + 1_000),
            Hold("testpay", "R-2", "S002", now + 2_000),
            Hold("testpay", "R-3", "S001", now + 3_000),
        ]
    )
    assert sorted(taken.taken()) == sorted(
        [
            (RELEASE_HOLDS, first, ([["testpay", "R-1", "S001"], ["testpay", "R-3", "S001"]],),
             3_000),
            (RELEASE_HOLDS, second, ([["testpay", "R-2", "S002"]],), 2_000),
        ]
    )  # fmt: skip
    bridge.holds.schedule_releases([Hold("testpay", "R-4", "S001", now)])  # due: no delay
    assert taken.taken() == [(RELEASE_HOLDS, first, ([["testpay", "R-4", "S001"]],), None)]
    bridge.holds.schedule_releases([])
    assert taken.taken() == []


def test_a_release_that_comes_too_early_comes_back_when_the_hold_ends(
    worker: tuple[Worker, Taken],
) -> None:
    bridge, taken = worker[0].bridge, worker[1]
    worker[0].receive("EARLY", "order.accepted", T0)
    worker[0].apply()
    taken.taken()
    worker[0].now = T0 + 10_000
    worker[0].release("EARLY")
    assert worker[0].stored() == {}
    assert taken.taken() == [
        (RELEASE_HOLDS, bridge.pipeline.queue_of(STORE), ([["testpay", "EARLY", STORE]],),
         HOLD_MS - 10_000)
    ]  # fmt: skip


# --------------------------------------------------------------------------- the sweeper


def test_the_sweeper_goes_on_after_a_sweep_that_failed_and_logs_what_it_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'late.sqlite3'}"
    with working(url, tmp_path) as (worker, taken):
        bridge = worker.bridge
        with caplog.at_level(logging.INFO, logger="waimai_bridge.pipeline.sweeper"):
            bridge.sweeper.start()
            wait_until(lambda: any("sweep failed" in m for m in caplog.messages), 10)
            bridge.database.migrate()
            worker.receive("S", "order.accepted", T0)
            worker.now = T0 + RESEND_MS + 1
            wait_until(lambda: any(m.startswith("swept: ") for m in caplog.messages), 10)
        bridge.sweeper.stop()
    failed = [r for r in caplog.records if r.getMessage().startswith("sweep failed")]
    assert failed[0].getMessage() == "sweep failed; retrying in 0.2s"
    assert failed[0].exc_info  # with its traceback
    [swept] = [m for m in caplog.messages if m.startswith("swept: ")]
    assert swept == "swept: Swept(events=1, releases=0, actions=0, deliveries=0, accepts=0)"
    shard = bridge.pipeline.shard_of(STORE)
    assert (PROCESS_SHARD, queue_name(shard), (shard,), None) in taken.taken()


# --------------------------------------------------------------------------- the broker


def test_the_broker_retries_failed_messages_on_a_capped_backoff_and_limits_their_time() -> None:
    for url in ("", "redis://127.0.0.1:6379/0", "rediss://cache:6380/0", "unix:///run/r.sock"):
        broker = make_broker(url)
        assert isinstance(broker, DoorbellRedisBroker) == bool(url)
        [retries] = [m for m in broker.middleware if isinstance(m, Retries)]
        assert (retries.min_backoff, retries.max_backoff, retries.max_retries) == (
            500, 60_000, 20,
        )  # fmt: skip
        [limit] = [m for m in broker.middleware if isinstance(m, TimeLimit)]
        assert limit.time_limit == 60_000
        broker.close()
    refused = "broker_url must be empty (in-process) or a redis:// URL, not amqp://…"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):  # no password repeated
        make_broker("amqp://guest:secret@rabbit:5672/")


def test_a_worker_of_some_shards_consumes_their_queues_and_the_deliveries(
    worker: tuple[Worker, Taken],
) -> None:
    pipeline = worker[0].bridge.pipeline
    assert pipeline.queues({1, 3}) == {queue_name(1), queue_name(3), DELIVERY_QUEUE}
    assert pipeline.queues() == {*(queue_name(shard) for shard in range(4)), DELIVERY_QUEUE}


def test_a_delay_queues_consumer_goes_on_after_the_message_it_handed_out_fell_due(
    own_redis: OwnRedis,
) -> None:
    broker = make_broker(own_redis.url)
    assert isinstance(broker, DoorbellRedisBroker)
    broker.declare_queue(queue_name(7))
    consumer = broker.consume(dq_name(queue_name(7)), prefetch=4, timeout=300)
    try:
        assert next(consumer) is None  # empty: from now on it waits for the doorbell
        broker.enqueue(Message(queue_name(7), "noop", (), {}, {}), delay=100)
        held = next(consumer)
        assert held is not None
        assert next(consumer) is None  # back when it falls due, for its worker to move it
        consumer.ack(held)
        assert next(consumer) is None  # then idle again: its timeout
        assert next(consumer) is None
    finally:
        consumer.close()
        broker.close()

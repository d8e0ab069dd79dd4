"""The pipeline as the docs state it, where the suite left mutants alive: a subscriber that
keeps failing is tried again after a backoff that doubles from ``subscriber_retry_seconds``
up to 5 minutes, each retry queued for when it is due (docs/subscribers.md); an outage is
told from a bad message, and what is kept of an error holds no values (docs/deploy.md)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Broker, Message, Middleware
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

import tests.test_store_mutants as store_test_helpers
from tests.test_pipeline import config_text, registry
from tests.test_subscribers import Subscriber
from waimai_bridge.config import load_config
from waimai_bridge.models import NativeEvent
from waimai_bridge.pipeline.actions import PERFORM_ACTION
from waimai_bridge.pipeline.failures import error_text, is_outage
from waimai_bridge.pipeline.shards import DELIVERY_QUEUE, PROCESS_SHARD, queue_name
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import inbox, outbox, subscriptions
from waimai_bridge.store.actions import ActionStatus
from waimai_bridge.store.tables import Delivery, InboxEvent

T0 = 1_700_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND


class Enqueued(Middleware):
    """Records the delay of every message the broker is given for the deliveries' queue,
    and every message for any queue."""

    def __init__(self) -> None:
        self.delays: list[int | None] = []
        self.messages: list[tuple[str, str, tuple[Any, ...], int | None]] = []

    def after_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        queue = message.queue_name.removeprefix("dq_").removesuffix(".DQ")
        self.messages.append((message.actor_name, queue, tuple(message.args), delay))
        if message.actor_name and DELIVERY_QUEUE in message.queue_name:
            self.delays.append(delay)


def _bridge(tmp_path: Path, now: list[int], extra: str = "") -> tuple[Bridge, Enqueued]:
    """An embedded bridge on SQLite whose clock is ``now[0]``, its broker's messages recorded."""
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'b.sqlite3'}", bridge_extra=extra))
    plugins = registry()
    bridge = Bridge(load_config(path, plugins), plugins, clock=lambda: now[0])
    enqueued = Enqueued()
    bridge.broker.add_middleware(enqueued)
    bridge.database.migrate()
    return bridge, enqueued


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    endpoint = Subscriber()
    yield endpoint
    endpoint.close()


@pytest.fixture
def down() -> Iterator[Subscriber]:
    endpoint = Subscriber()
    endpoint.down = True
    yield endpoint
    endpoint.close()


def test_a_subscriber_that_keeps_failing_is_retried_on_a_doubling_backoff(
    tmp_path: Path, down: Subscriber
) -> None:
    now = [T0]
    extra = "subscriber_retry_seconds = 2\nsubscriber_give_up_seconds = 900\n"
    extra += "subscriber_allow_private = true"
    bridge, enqueued = _bridge(tmp_path, now, extra)
    counted = {outcome: _deliveries(outcome) for outcome in ("done", "retry", "dead")}
    try:
        with bridge.database.transaction() as session:
            subscriptions.subscribe(
                session, url=down.url, secret="s" * 16, store_ids=None, platforms=None,
                states=None, now_ms=T0,
            )  # fmt: skip
            outbox.order_update(
                session, order_id=1, platform="testpay", store_id="S001", status="paid",
                previous_status=None, rider_state=None, version=1, now_ms=T0,
            )  # fmt: skip
        waits: list[int] = []
        while len(waits) < 20:
            bridge.deliverer.deliver()
            with bridge.database.transaction() as session:
                row = session.execute(select(Delivery)).scalar_one()
            if row.status == "dead":
                break
            wait = row.next_attempt_at_ms - now[0]
            assert enqueued.delays.pop() == wait  # the next run is queued for when it is due
            waits.append(wait)
            now[0] = row.next_attempt_at_ms
    finally:
        bridge.stop()
    assert waits == [2 * SECOND * 2**n for n in range(8)] + [5 * MINUTE] * 2
    assert row.attempts == len(waits) + 1
    assert down.refused == row.attempts
    assert enqueued.delays == []  # a dead update queues no more runs
    assert {outcome: _deliveries(outcome) - before for outcome, before in counted.items()} == {
        "done": 0, "retry": len(waits), "dead": 1,
    }  # fmt: skip


def _deliveries(outcome: str) -> float:
    """``waimai_deliveries_total{outcome=...}`` as /metrics shows it now."""
    return REGISTRY.get_sample_value("waimai_deliveries_total", {"outcome": outcome}) or 0.0


def test_an_update_the_subscriber_takes_is_done_when_it_answered(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    now = [T0]
    bridge, enqueued = _bridge(tmp_path, now, "subscriber_allow_private = true")
    done_before = _deliveries("done")
    try:
        with bridge.database.transaction() as session:
            subscriptions.subscribe(
                session, url=subscriber.url, secret="s" * 16, store_ids=None, platforms=None,
                states=None, now_ms=T0,
            )  # fmt: skip
            for version in (1, 2):
                outbox.order_update(
                    session, order_id=1, platform="testpay", store_id="S001", status="paid",
                    previous_status=None, rider_state=None, version=version, now_ms=T0,
                )  # fmt: skip
        now[0] = T0 + 5 * SECOND
        bridge.deliverer.deliver()
        with bridge.database.transaction() as session:
            rows = session.execute(select(Delivery)).scalars().all()
    finally:
        bridge.stop()
    assert [(row.status, row.attempts, row.delivered_at_ms) for row in rows] == [
        ("done", 1, T0 + 5 * SECOND)
    ] * 2
    assert [update["version"] for update in subscriber.updates()] == [1, 2]
    timestamp = str((T0 + 5 * SECOND) // 1000)
    for headers, body in subscriber.received:  # as docs/subscribers.md says a POST is
        named = {name.lower(): value for name, value in headers.items()}
        assert named["content-type"] == "application/json"
        assert named["x-waimai-timestamp"] == timestamp
        signed = hmac.new(b"s" * 16, timestamp.encode() + b"." + body, hashlib.sha256)
        assert named["x-waimai-signature"] == signed.hexdigest()
    assert _deliveries("done") - done_before == 2
    assert enqueued.delays == []  # nothing left to retry


def _database_error(kind: type[DBAPIError], *, invalidated: bool = False) -> DBAPIError:
    orig = ValueError("duplicate key value violates unique constraint")
    return kind("INSERT INTO orders VALUES (%(secret)s)", {"secret": "x"}, orig,
                connection_invalidated=invalidated)  # fmt: skip


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (_database_error(OperationalError), True),
        (_database_error(InterfaceError), True),
        (_database_error(IntegrityError, invalidated=True), True),
        (ConnectionRefusedError(), True),
        (RedisConnectionError("down"), True),
        (_database_error(IntegrityError), False),
        (_database_error(DataError), False),
        (ValueError("bad event"), False),
        (KeyError("price"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_an_outage_is_told_from_a_bad_message(error: BaseException, outage: bool) -> None:
    """An outage is tried again later whole; anything else sets the event aside."""
    assert is_outage(error) is outage


def test_the_error_kept_of_a_database_error_is_its_own_message_without_the_values() -> None:
    kept = error_text(_database_error(IntegrityError))
    assert kept == "ValueError: duplicate key value violates unique constraint"
    assert error_text(KeyError("price")) == "KeyError: 'price'"
    without_orig = DBAPIError("SELECT 1", None, None)  # type: ignore[arg-type]
    assert error_text(without_orig).startswith("DBAPIError: ")


def test_a_parked_event_put_back_in_line_is_sent_to_its_shard_at_once_or_left_to_the_sweep(
    tmp_path: Path,
) -> None:
    now = [T0]
    bridge, enqueued = _bridge(tmp_path, now)
    try:
        received = [
            (NativeEvent(
                platform="testpay", store_id="S002", platform_order_id=f"O{n}", native_code="12",
                idempotency_key=f"testpay:O{n}:12", platform_time_ms=T0, payload={},
            ), T0)
            for n in range(2)
        ]  # fmt: skip
        shard = bridge.pipeline.shard_of("S002")
        with bridge.database.transaction() as session:
            inbox.record(session, received, shard_of=bridge.pipeline.shard_of)
        with bridge.database.transaction() as session:
            taken = inbox.take(session, shard, limit=10, now_ms=T0)
            for row in taken:
                inbox.park(session, row.id, "ValueError: unreadable", T0)
        first, second = (row.id for row in taken)
        bridge.pipeline.wake(shard)  # a message may already wait: the retry sends one anyway
        enqueued.messages.clear()
        now[0] = T0 + MINUTE
        assert bridge.applier.retry(first) is True
        assert enqueued.messages == [(PROCESS_SHARD, queue_name(shard), (shard,), None)]
        assert bridge.applier.retry(second, send=False) is True
        assert bridge.applier.retry(first) is False  # pending again, not parked
        assert bridge.applier.retry(10**9) is False
        assert len(enqueued.messages) == 1
        with bridge.database.transaction() as session:
            rows = {row.id: row for row in session.execute(select(InboxEvent)).scalars()}
        assert (rows[first].status, rows[first].enqueued_at_ms) == ("pending", T0 + MINUTE)
        assert (rows[second].status, rows[second].enqueued_at_ms) == ("pending", 0)
    finally:
        bridge.stop()


def test_a_failed_action_given_more_tries_is_queued_on_its_stores_shard(tmp_path: Path) -> None:
    now = [T0]
    bridge, enqueued = _bridge(tmp_path, now)
    try:
        with bridge.database.transaction() as session:
            failed = store_test_helpers.outbound_action(1, ActionStatus.FAILED, store_id="S002")
            done = store_test_helpers.outbound_action(2, ActionStatus.DONE)
            session.add_all([failed, done])
            session.flush()
            failed_id, done_id = failed.id, done.id
        enqueued.messages.clear()
        now[0] = T0 + MINUTE
        again = bridge.actions.retry(failed_id)
        assert again is not None
        assert (again.id, again.status, again.attempt_limit) == (
            failed_id, ActionStatus.PENDING, again.attempts + bridge.actions.tries,
        )  # fmt: skip
        queue = queue_name(bridge.pipeline.shard_of("S002"))
        assert enqueued.messages == [(PERFORM_ACTION, queue, (failed_id,), None)]
        assert bridge.actions.retry(done_id) is None
        assert bridge.actions.retry(10**9) is None
        assert len(enqueued.messages) == 1
    finally:
        bridge.stop()

"""Subscriber deliveries in the pipeline where mutation testing found them unchecked
(seed 001): a batch at a time, signed JSON with its timestamp in seconds, a refusal or a
subscriber that never answers kept as its error and retried or given up on, counted by
outcome, and a run the broker refused left for the sweep.

A worker's bridge on SQLite and on PostgreSQL whose clock the test holds and whose queues
nobody consumes (see :mod:`tests.test_pipeline_mutants_messages`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.test_hold import STORE, T0, Worker
from tests.test_pipeline_mutants_messages import (
    RESEND_MS,
    OwnRedis,
    Taken,
    running_redis,
    working,
)
from tests.test_subscribers import Subscriber
from waimai_bridge.pipeline.deliveries import BATCH as DELIVERY_BATCH
from waimai_bridge.pipeline.deliveries import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from waimai_bridge.pipeline.shards import DELIVER, DELIVERY_QUEUE
from waimai_bridge.store import outbox, subscriptions
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Delivery


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[tuple[Worker, Taken]]:
    with working(database.url, tmp_path, extra="subscriber_allow_private = true") as made:
        yield made


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture
def on_redis(
    database: Database, tmp_path: Path, own_redis: OwnRedis
) -> Iterator[tuple[Worker, Taken]]:
    """The worker's bridge on the test's own Redis."""
    with working(
        database.url, tmp_path, broker=own_redis.url, extra="subscriber_allow_private = true"
    ) as made:
        yield made


def subscribed(worker: Worker, endpoint: Subscriber | str, updates: int) -> None:
    """A subscription to ``endpoint`` (or that URL), and ``updates`` order updates due for it."""
    url = endpoint if isinstance(endpoint, str) else endpoint.url
    with worker.bridge.database.transaction() as session:
        subscriptions.subscribe(
            session, url=url, secret="s" * 16, store_ids=None, platforms=None,
            states=None, now_ms=worker.now,
        )  # fmt: skip
        for number in range(updates):
            outbox.order_update(
                session, order_id=number + 1, platform="testpay", store_id=STORE,
                status="paid", previous_status=None, rider_state=None, version=1,
                now_ms=worker.now,
            )  # fmt: skip


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    endpoint = Subscriber()
    yield endpoint
    endpoint.close()


def test_updates_are_posted_a_batch_at_a_time_and_a_full_batch_queues_the_rest(
    worker: tuple[Worker, Taken], subscriber: Subscriber
) -> None:
    bridge, taken = worker[0].bridge, worker[1]
    subscribed(worker[0], subscriber, DELIVERY_BATCH + 1)
    bridge.deliverer.deliver()
    assert len(subscriber.updates()) == DELIVERY_BATCH
    assert taken.taken() == [(DELIVER, DELIVERY_QUEUE, (), None)]
    bridge.deliverer.deliver()
    assert len(subscriber.updates()) == DELIVERY_BATCH + 1
    assert taken.taken() == []  # nothing left: no run queued
    bridge.deliverer.deliver()
    assert taken.taken() == []


def test_a_subscriber_down_while_the_broker_is_down_is_retried_from_the_sweep(
    on_redis: tuple[Worker, Taken], own_redis: OwnRedis, subscriber: Subscriber
) -> None:
    worker, taken = on_redis
    bridge = worker.bridge
    subscriber.down = True
    subscribed(worker, subscriber, 1)
    own_redis.refuse("evalsha", "eval")
    bridge.deliverer.deliver()  # refused; the run queued for its retry is lost
    with bridge.database.transaction() as session:
        row = session.execute(select(Delivery)).scalar_one()
        assert (row.status, row.attempts) == ("pending", 1)
        due = row.next_attempt_at_ms
    own_redis.take_all()
    subscriber.down = False
    assert taken.taken() == []
    worker.now = due + RESEND_MS
    assert bridge.sweeper.sweep().deliveries == 0  # not due long enough yet
    worker.now += 1
    assert bridge.sweeper.sweep().deliveries == 1
    assert taken.taken() == [(DELIVER, DELIVERY_QUEUE, (), None)]
    bridge.deliverer.deliver()
    assert len(subscriber.updates()) == 1
    assert bridge.sweeper.sweep().deliveries == 0  # delivered: nothing due


def test_an_update_is_posted_as_signed_json_and_a_refusal_is_kept_as_its_status(
    worker: tuple[Worker, Taken], subscriber: Subscriber
) -> None:
    bridge = worker[0].bridge
    worker[0].now = T0 + 1_999  # the timestamp is in whole seconds
    subscriber.down = True
    subscribed(worker[0], subscriber, 1)
    before = {outcome: posts(outcome) for outcome in ("done", "retry", "dead")}
    bridge.deliverer.deliver()
    with bridge.database.transaction() as session:
        row = session.execute(select(Delivery)).scalar_one()
        assert (row.status, row.last_error) == ("pending", "HTTP 503 Service Unavailable")
        worker[0].now = row.next_attempt_at_ms
    subscriber.down = False
    bridge.deliverer.deliver()
    with bridge.database.transaction() as session:
        row = session.execute(select(Delivery)).scalar_one()
        assert (row.status, row.delivered_at_ms) == ("done", worker[0].now)
    after = {outcome: posts(outcome) - before[outcome] for outcome in before}
    assert after == {"done": 1, "retry": 1, "dead": 0}
    [(headers, body)] = subscriber.received
    timestamp = worker[0].now // 1000
    assert headers["content-type"] == "application/json"
    assert headers[TIMESTAMP_HEADER] == str(timestamp)
    assert headers[SIGNATURE_HEADER] == signature("s" * 16, timestamp, body)


@pytest.mark.timeout(60)
def test_a_subscriber_that_never_answers_times_out_and_is_given_up_on(
    database: Database, tmp_path: Path
) -> None:
    with socket.socket() as listener:  # takes connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        extra = (
            "subscriber_timeout_seconds = 0.2\nsubscriber_retry_seconds = 1\n"
            "subscriber_give_up_seconds = 2\nsubscriber_allow_private = true"
        )
        with working(database.url, tmp_path, extra=extra) as (worker, _):
            subscribed(worker, url, 1)
            before = {outcome: posts(outcome) for outcome in ("done", "retry", "dead")}
            worker.bridge.deliverer.deliver()
            worker.now = T0 + 2_000
            worker.bridge.deliverer.deliver()
            with worker.bridge.database.transaction() as session:
                row = session.execute(select(Delivery)).scalar_one()
                assert (row.status, row.attempts) == ("dead", 2)
                assert (row.last_error or "").startswith("ReadTimeout: ")
    after = {outcome: posts(outcome) - before[outcome] for outcome in before}
    assert after == {"done": 0, "retry": 1, "dead": 1}


def posts(outcome: str) -> float:
    """The subscriber POSTs of ``/metrics`` with ``outcome``, as it reads now."""
    return REGISTRY.get_sample_value("waimai_deliveries_total", {"outcome": outcome}) or 0.0

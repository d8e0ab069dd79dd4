"""The pipeline as the docs state it, where the suite left mutants alive: a subscriber that
keeps failing is tried again after a backoff that doubles from ``subscriber_retry_seconds``
up to 5 minutes, each retry queued for when it is due (docs/subscribers.md); an outage is
told from a bad message, and what is kept of an error holds no values (docs/deploy.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Broker, Message, Middleware
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from tests.test_pipeline import config_text, registry
from tests.test_subscribers import Subscriber
from waimai_bridge.config import load_config
from waimai_bridge.pipeline.failures import error_text, is_outage
from waimai_bridge.pipeline.shards import DELIVERY_QUEUE
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import outbox, subscriptions
from waimai_bridge.store.tables import Delivery

T0 = 1_700_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND


class Enqueued(Middleware):
    """Records the delay of every message the broker is given for the deliveries' queue."""

    def __init__(self) -> None:
        self.delays: list[int | None] = []

    def after_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        if message.actor_name and DELIVERY_QUEUE in message.queue_name:
            self.delays.append(delay)


@pytest.fixture
def down() -> Iterator[Subscriber]:
    endpoint = Subscriber()
    endpoint.down = True
    yield endpoint
    endpoint.close()


def test_a_subscriber_that_keeps_failing_is_retried_on_a_doubling_backoff(
    tmp_path: Path, down: Subscriber
) -> None:
    path = tmp_path / "bridge.toml"
    extra = "subscriber_retry_seconds = 2\nsubscriber_give_up_seconds = 900"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'b.sqlite3'}", bridge_extra=extra))
    plugins = registry()
    now = [T0]
    bridge = Bridge(load_config(path, plugins), plugins, clock=lambda: now[0])
    enqueued = Enqueued()
    bridge.broker.add_middleware(enqueued)
    try:
        bridge.database.migrate()
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

"""The pipeline where mutation testing found it unchecked: a parked event put back in line,
a batch applied one by one when the database refuses one event or goes away, holds released
alone, failed actions retried by hand, and what each of them sends, logs and counts.

A worker's bridge on SQLite and on PostgreSQL (the in-process broker, its clock in the
test's hands, nothing consuming its queues): each test drives the actors itself and reads
what they left in the database and in the queues.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from tests.test_hold import HOLD_MS, STORE, T0, Worker, refusing, working
from waimai_bridge.pipeline.apply import BATCH
from waimai_bridge.pipeline.failures import error_text, is_outage
from waimai_bridge.pipeline.holds import BEHIND_MS
from waimai_bridge.pipeline.intake import _unreachable
from waimai_bridge.pipeline.shards import PROCESS_SHARD
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import InboxEvent

RESEND_MS = 500
"""How long the sweeper of :func:`config_text`'s bridge lets a message be lost."""


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[Worker]:
    with working(database, tmp_path) as made:
        yield made


@pytest.fixture
def pg_worker(postgres_database: Database, tmp_path: Path) -> Iterator[Worker]:
    """The worker on PostgreSQL alone, whose triggers can fail as a lost connection does."""
    with working(postgres_database, tmp_path) as made:
        yield made


def sent(worker: Worker, actor: str) -> list[Message[Any]]:
    """The messages for ``actor`` waiting in the store's shard queue (due now)."""
    broker = worker.bridge.broker
    assert isinstance(broker, StubBroker)
    queue = broker.queues[worker.bridge.pipeline.queue_of(STORE)]
    messages = [Message.decode(data) for data in queue.queue]
    return [message for message in messages if message.actor_name == actor]


def inbox_id(worker: Worker, key: str) -> int:
    with worker.bridge.database.transaction() as session:
        statement = select(InboxEvent.id).where(InboxEvent.idempotency_key == key)
        return int(session.execute(statement).scalar_one())


def counted(name: str, **labels: str) -> float:
    """A counter of ``/metrics`` as it reads now."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --------------------------------------------------------------------------- parked events


def parked(worker: Worker, key: str = "BAD") -> int:
    """An event the database refused, parked; its inbox id."""
    worker.receive("A", "order.accepted", T0)
    worker.receive("A", "rider.delivering", T0 + 1, key=key)
    with refusing(worker.bridge.database, "order_events", "idempotency_key", key):
        worker.apply()
    assert worker.inbox()[key][0] == "failed"
    return inbox_id(worker, key)


def test_a_parked_event_put_back_in_line_is_sent_at_once_though_its_shard_looks_woken(
    worker: Worker,
) -> None:
    row_id = parked(worker)
    pipeline = worker.bridge.pipeline
    shard = pipeline.shard_of(STORE)
    pipeline.wake(shard)  # the shard's signal is up, and its message ...
    worker.forget_messages()  # ... lost
    assert worker.bridge.applier.retry(row_id)
    [message] = sent(worker, PROCESS_SHARD)
    assert message.args == (shard,)
    assert worker.inbox()["BAD"][0] == "pending"
    worker.forget_messages()
    worker.now += RESEND_MS  # sent just now: a sweep has nothing to send again yet
    assert worker.bridge.sweeper.sweep().events == 0
    assert sent(worker, PROCESS_SHARD) == []
    worker.apply()
    assert worker.inbox()["BAD"][0] == "done"


def test_a_parked_event_put_back_in_line_without_a_message_is_left_to_the_next_sweep(
    worker: Worker,
) -> None:
    row_id = parked(worker)
    worker.forget_messages()
    assert worker.bridge.applier.retry(row_id, send=False)  # a process without the broker
    assert sent(worker, PROCESS_SHARD) == []
    assert worker.inbox()["BAD"][0] == "pending"
    assert worker.bridge.sweeper.sweep().events == 1  # due at once: the next sweep sends it
    [message] = sent(worker, PROCESS_SHARD)
    assert message.args == (worker.bridge.pipeline.shard_of(STORE),)


def test_an_event_parked_alone_keeps_the_databases_own_error_and_logs_only_its_type(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    failed = ("waimai_events_processed_total", {"platform": "testpay", "outcome": "failed"})
    before = counted(failed[0], **failed[1])
    worker.now = T0 + 5_000
    with caplog.at_level(logging.WARNING, logger="waimai_bridge.pipeline.apply"):
        row_id = parked(worker)
    _, error = worker.inbox()["BAD"]
    sqlite = worker.bridge.database.dialect == "sqlite"
    # the driver's error and its message, without the statement and values SQLAlchemy adds
    assert (error or "").startswith(
        "IntegrityError: value too long" if sqlite else "StringDataRightTruncation: value too long"
    )
    assert "[SQL" not in (error or "")
    assert counted(failed[0], **failed[1]) == before + 1
    kind = "IntegrityError" if sqlite else "DataError"
    assert f"inbox event {row_id} parked: {kind}" in caplog.messages
    with worker.bridge.database.transaction() as session:
        row = session.get(InboxEvent, row_id)
        assert row is not None
        assert row.done_at_ms == worker.now  # when it was parked


@contextmanager
def failing(database: Database, table: str, column: str, refused: str, gone: str) -> Iterator[None]:
    """PostgreSQL refuses the rows of ``table`` whose ``column`` is ``refused`` as a value
    it cannot hold, and fails on those where it is ``gone`` as a connection that broke does."""
    with database.engine.begin() as connection:
        connection.execute(text(
            "CREATE FUNCTION failing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.{column} = '{refused}' THEN "
            "RAISE EXCEPTION 'value too long' USING ERRCODE = '22001'; END IF; "
            f"IF NEW.{column} = '{gone}' THEN "
            "RAISE EXCEPTION 'connection lost' USING ERRCODE = '08006'; END IF; "
            "RETURN NEW; END $$"
        ))  # fmt: skip
        connection.execute(text(
            f"CREATE TRIGGER failing BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION failing()"
        ))  # fmt: skip
    try:
        yield
    finally:
        with database.engine.begin() as connection:
            connection.execute(text(f"DROP TRIGGER failing ON {table}; DROP FUNCTION failing()"))


def test_an_outage_while_a_batch_is_applied_one_by_one_parks_nothing_more(
    pg_worker: Worker,
) -> None:
    worker = pg_worker
    database = worker.bridge.database
    worker.receive("A", "order.accepted", T0, key="FIRST")
    worker.receive("B", "order.accepted", T0 + 1, key="REFUSED")
    worker.receive("C", "order.accepted", T0 + 2, key="GONE")
    refused = failing(database, "order_events", "idempotency_key", "REFUSED", "GONE")
    with refused, pytest.raises(OperationalError):
        worker.apply()  # the batch fails on REFUSED: one by one, until GONE meets the outage
    statuses = worker.inbox()
    assert statuses["FIRST"] == ("done", None)
    assert statuses["REFUSED"][0] == "failed"
    assert statuses["GONE"] == ("pending", None)  # tried again when the database is back
    worker.apply()
    assert worker.inbox()["GONE"] == ("done", None)


def test_a_full_batch_wakes_its_shard_again_for_the_rest(worker: Worker) -> None:
    for number in range(BATCH + 1):
        worker.receive(f"O{number}", "order.accepted", T0 + number)
    worker.forget_messages()
    worker.apply()
    [message] = sent(worker, PROCESS_SHARD)
    assert message.args == (worker.bridge.pipeline.shard_of(STORE),)
    assert sum(status == "pending" for status, _ in worker.inbox().values()) == 1
    worker.forget_messages()
    worker.apply()  # the rest: fewer than a batch, nothing more to wake
    assert sent(worker, PROCESS_SHARD) == []
    assert {status for status, _ in worker.inbox().values()} == {"done"}


# --------------------------------------------------------------------------- holds


def test_a_late_release_that_fails_together_releases_each_order_alone_without_the_others(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    failed = counted("waimai_orders_released_total", outcome="failed")
    for order in ("GOOD", "BAD", "FINE"):
        worker.receive(order, "order.accepted", T0)
    worker.apply()
    worker.now = T0 + HOLD_MS + BEHIND_MS + 1  # a backlog: a release takes due holds along
    refused = refusing(worker.bridge.database, "orders", "platform_order_id", "BAD")
    with refused, caplog.at_level(logging.ERROR, logger="waimai_bridge.pipeline.holds"):
        worker.release("GOOD")  # takes BAD and FINE along: fails, then GOOD alone
        assert set(worker.stored()) == {"GOOD"}
        worker.release("BAD")  # alone, with its lines and without: left held
        worker.release("FINE")
    assert set(worker.stored()) == {"GOOD", "FINE"}
    kind = "IntegrityError" if worker.bridge.database.dialect == "sqlite" else "DataError"
    assert caplog.messages == [
        f"the hold of testpay order BAD could not be released ({kind}); the sweep tries again"
    ]
    assert counted("waimai_orders_released_total", outcome="failed") == failed + 1
    worker.release("BAD")  # once the database takes it
    assert set(worker.stored()) == {"GOOD", "BAD", "FINE"}


def test_an_outage_while_holds_are_released_one_by_one_leaves_the_rest_held(
    pg_worker: Worker,
) -> None:
    worker = pg_worker
    for order in ("BAD", "DOWN", "LATER"):
        worker.receive(order, "order.accepted", T0)
    worker.apply()
    worker.now = T0 + HOLD_MS
    refused = failing(worker.bridge.database, "orders", "platform_order_id", "BAD", "DOWN")
    with refused, pytest.raises(OperationalError):
        worker.release("BAD", "DOWN", "LATER")  # BAD fails them all, then DOWN meets the outage
    assert worker.stored() == {}
    worker.release("BAD", "DOWN", "LATER")  # the message again, the database back
    assert set(worker.stored()) == {"BAD", "DOWN", "LATER"}


# --------------------------------------------------------------------------- failures


def test_what_counts_as_an_outage() -> None:
    invalidated = DBAPIError("SELECT 1", None, ValueError("gone"), connection_invalidated=True)
    refused = DBAPIError("SELECT 1", None, ValueError("bad"))
    assert is_outage(invalidated)
    assert not is_outage(refused)
    assert _unreachable(invalidated)
    assert not _unreachable(refused)
    assert _unreachable(OperationalError("SELECT 1", None, ValueError("down")))
    assert not _unreachable(IntegrityError("INSERT", None, ValueError("duplicate")))


def test_an_error_is_kept_as_its_type_and_message() -> None:
    assert error_text(ValueError("no such store")) == "ValueError: no such store"
    wrapped = IntegrityError("INSERT INTO t VALUES (?)", ("secret",), KeyError("dup"))
    assert error_text(wrapped) == "KeyError: 'dup'"

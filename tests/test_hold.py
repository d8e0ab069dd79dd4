"""The accept hold, exactly (SPEC §5), and a shard that one bad event cannot stop.

A worker's bridge on SQLite and on PostgreSQL, its clock in the test's hands and nothing
consuming its queues: each test receives pushes into the inbox, applies them with
``process_shard`` and ends holds with ``release_holds`` when it chooses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, select, text

from tests import testpay
from tests.sample_plugin import PRICE
from tests.test_pipeline import SECRET, config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.models import InboundRequest
from waimai_bridge.pipeline.holds import RELEASE_HOLDS
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Anomaly, InboxEvent, Order, OrderItem, PlatformOrder

T0 = 1_716_181_200_000
HOLD_MS = 60_000
STORE = "S001"


class Worker:
    """A bridge whose clock reads :attr:`now` and whose queues nobody consumes."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.now = T0

    def receive(
        self, order: str, code: str, at_ms: int, key: str | None = None, **extra: Any
    ) -> None:
        """A push received at ``at_ms``, written to the inbox and not applied."""
        self.now = max(self.now, at_ms)
        body = testpay.push(key or f"{order}:{code}", order, code, at_ms, **extra)
        request = InboundRequest(
            method="POST", url="u", kind=None, query=[], received_at_ms=at_ms,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}, body=body,
        )  # fmt: skip
        parsed = self.bridge.registry.platform("testpay").parse_event(
            request, self.bridge.config.plugin_config("testpay")
        )
        assert parsed is not None
        write_pushes(self.bridge.pipeline, [(parsed.events, at_ms)])

    def apply(self) -> None:
        """What a worker does with the shard's message: apply what the inbox holds."""
        self.bridge.applier.process_shard(self.bridge.pipeline.shard_of(STORE))

    def release(self, *orders: str) -> None:
        self.bridge.holds.release_holds([["testpay", order, STORE] for order in orders])

    def stored(self) -> dict[str, tuple[str, int]]:
        """The stored orders: state and refunded amount, by platform order id."""
        with self.bridge.database.transaction() as session:
            rows = session.execute(
                select(Order.platform_order_id, Order.state, Order.refunded_amount_fen)
            )
            return {order: (state, refunded) for order, state, refunded in rows}

    def discarded(self) -> set[str]:
        with self.bridge.database.transaction() as session:
            statement = select(PlatformOrder.platform_order_id).where(PlatformOrder.discarded)
            return set(session.execute(statement).scalars())

    def inbox(self) -> dict[str, tuple[str, str | None]]:
        """Status and error of every inbox event, by idempotency key."""
        with self.bridge.database.transaction() as session:
            rows = session.execute(select(InboxEvent.idempotency_key, InboxEvent.status,
                                          InboxEvent.error))  # fmt: skip
            return {key: (status, error) for key, status, error in rows}

    def forget_messages(self) -> None:
        broker = self.bridge.broker
        assert isinstance(broker, StubBroker)
        broker.flush_all()

    def releases_sent(self) -> list[Message[Any]]:
        """The release messages waiting in the store's queue (and its delay queue)."""
        broker = self.bridge.broker
        assert isinstance(broker, StubBroker)
        queue = self.bridge.pipeline.queue_of(STORE)
        waiting = [*broker.queues[queue].queue, *broker.queues[f"{queue}.DQ"].queue]
        messages = [Message.decode(data) for data in waiting]
        return [message for message in messages if message.actor_name == RELEASE_HOLDS]


@contextmanager
def working(database: Database, tmp_path: Path, tables: str = "") -> Iterator[Worker]:
    """A worker's bridge on ``database`` whose clock reads :attr:`Worker.now` (``tables``:
    more config tables)."""
    path = tmp_path / "bridge.toml"
    path.write_text(f"{config_text(database.url, hold=HOLD_MS // 1000)}\n{tables}\n", "utf-8")
    plugins = registry()
    holder: list[Worker] = []
    bridge = Bridge(load_config(path, plugins), plugins, clock=lambda: holder[0].now)
    holder.append(Worker(bridge))
    try:
        yield holder[0]
    finally:
        bridge.stop()


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[Worker]:
    with working(database, tmp_path) as made:
        yield made


# --------------------------------------------------------------------------- the hold


def test_a_release_waits_while_an_event_received_within_the_hold_is_unread(
    worker: Worker,
) -> None:
    worker.receive("RACE", "order.accepted", T0)
    worker.apply()
    # the cancel arrives within the hold, but its worker has not read it yet
    worker.receive("RACE", "order.cancelled", T0 + 30_000)
    worker.now = T0 + HOLD_MS + 1
    worker.forget_messages()
    worker.release("RACE")
    assert worker.stored() == {}  # not decided on what was read so far
    assert worker.discarded() == set()
    [again] = worker.releases_sent()  # it comes back
    assert again.args == ([["testpay", "RACE", STORE]],)
    worker.apply()
    worker.release("RACE")
    assert worker.stored() == {}
    assert worker.discarded() == {"RACE"}


def test_an_event_received_after_the_hold_does_not_hold_the_release_back(
    worker: Worker,
) -> None:
    worker.receive("LATE", "order.accepted", T0)
    worker.apply()
    worker.receive("LATE", "order.cancelled", T0 + HOLD_MS + 1)  # unread, and too late
    worker.now = T0 + HOLD_MS + 2
    worker.release("LATE")
    assert worker.stored() == {"LATE": ("paid", 0)}
    worker.apply()
    assert worker.stored() == {"LATE": ("refunded", 0)}  # no price: nothing stated


def test_a_parked_event_does_not_hold_the_release_back(worker: Worker) -> None:
    worker.receive("PARKED", "order.accepted", T0)
    worker.receive("PARKED", "note.poison", T0 + 1_000)
    worker.apply()
    assert worker.inbox()["PARKED:note.poison"][0] == "failed"
    worker.now = T0 + HOLD_MS
    worker.release("PARKED")
    assert worker.stored() == {"PARKED": ("paid", 0)}


def test_completed_then_refunded_in_full_within_the_hold_is_stored_as_refunded(
    worker: Worker,
) -> None:
    # a backlog redelivered at once: a whole lifecycle within one hold
    for offset, code in enumerate(["order.accepted", "rider.delivered", "order.completed",
                                   "refund.requested", "refund.agreed"]):  # fmt: skip
        worker.receive("BACKLOG", code, T0 + offset, price=PRICE)
    worker.receive("CANCELLED", "order.accepted", T0)
    worker.receive("CANCELLED", "order.cancelled", T0 + 5)
    worker.apply()
    worker.now = T0 + HOLD_MS
    worker.release("BACKLOG", "CANCELLED")
    assert worker.stored() == {"BACKLOG": ("refunded", USER_PAID)}
    assert worker.discarded() == {"CANCELLED"}


USER_PAID = int(PRICE["user_paid"])


# --------------------------------------------------------------------------- bad events


@contextmanager
def refusing(database: Database, table: str, column: str, value: str) -> Iterator[None]:
    """Make the database itself refuse rows of ``table`` whose ``column`` is ``value``
    (as it refuses a value it cannot hold), until the block ends."""
    with database.engine.begin() as connection:
        if database.dialect == "sqlite":
            connection.execute(text(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.{column} = '{value}' "
                "BEGIN SELECT RAISE(ABORT, 'value too long'); END"
            ))  # fmt: skip
        else:
            connection.execute(text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'value too long' USING ERRCODE = '22001'; END $$"
            ))  # fmt: skip
            connection.execute(text(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN (NEW.{column} = '{value}') EXECUTE FUNCTION refuse()"
            ))  # fmt: skip
    try:
        yield
    finally:
        with database.engine.begin() as connection:
            connection.execute(text(
                "DROP TRIGGER refuse" if database.dialect == "sqlite"
                else f"DROP TRIGGER refuse ON {table}; DROP FUNCTION refuse()"
            ))  # fmt: skip


def test_an_event_the_database_refuses_is_parked_and_the_rest_of_its_batch_applied(
    worker: Worker,
) -> None:
    for order in ("A", "B", "C"):
        worker.receive(order, "order.accepted", T0)
    worker.receive("B", "rider.delivering", T0 + 1, key="BAD")
    with refusing(worker.bridge.database, "order_events", "idempotency_key", "BAD"):
        worker.apply()  # one batch: it fails, then its events go one by one
    statuses = worker.inbox()
    assert statuses.pop("BAD")[0] == "failed"
    assert "value too long" in (worker.inbox()["BAD"][1] or "")
    assert set(statuses.values()) == {("done", None)}
    worker.now = T0 + HOLD_MS
    worker.release("A", "B", "C")
    assert worker.stored() == {order: ("paid", 0) for order in ("A", "B", "C")}


def test_an_order_the_database_refuses_to_store_never_holds_back_the_others(
    worker: Worker,
) -> None:
    for order in ("GOOD", "BAD", "FINE"):
        worker.receive(order, "order.accepted", T0)
    worker.apply()
    worker.now = T0 + HOLD_MS
    with refusing(worker.bridge.database, "orders", "platform_order_id", "BAD"):
        worker.release("GOOD", "BAD", "FINE")  # released together: fails, then one by one
        assert set(worker.stored()) == {"GOOD", "FINE"}
    worker.now += 1
    worker.release("BAD")  # what the sweep does once the cause is gone
    assert set(worker.stored()) == {"GOOD", "BAD", "FINE"}


def test_an_order_whose_lines_the_database_refuses_is_stored_without_them(
    worker: Worker,
) -> None:
    bad_line = {**PRICE["items"][0], "name": "BAD"}
    worker.receive("LINES", "order.created", T0, price={**PRICE, "items": [bad_line]})
    worker.receive("LINES", "order.accepted", T0 + 1)
    worker.receive("FINE", "order.created", T0, price=PRICE)
    worker.receive("FINE", "order.accepted", T0 + 1)
    worker.apply()
    worker.now = T0 + HOLD_MS + 1
    with refusing(worker.bridge.database, "order_items", "name", "BAD"):
        worker.release("LINES", "FINE")
    assert set(worker.stored()) == {"LINES", "FINE"}
    with worker.bridge.database.transaction() as session:
        lines = session.execute(
            select(Order.platform_order_id, func.count(OrderItem.id))
            .join(OrderItem, isouter=True)
            .group_by(Order.platform_order_id)
        )
        anomalies = session.execute(
            select(Anomaly.kind, Order.platform_order_id).join(Order).where(
                Anomaly.kind != "unmapped_sku")
        )  # fmt: skip
        assert dict(lines.all()) == {"LINES": 0, "FINE": len(PRICE["items"])}
        assert anomalies.all() == [("lines_not_stored", "LINES")]


def test_a_kept_price_the_contract_no_longer_allows_stores_the_order_without_lines(
    worker: Worker,
) -> None:
    worker.receive("OLD", "order.accepted", T0)
    worker.apply()
    with worker.bridge.database.transaction() as session:  # kept before a bound existed
        platform_order = session.execute(select(PlatformOrder)).scalar_one()
        platform_order.price = {**PRICE, "items": [{"name": ""}]}
    worker.now = T0 + HOLD_MS
    worker.release("OLD")
    assert worker.stored() == {"OLD": ("paid", 0)}
    with worker.bridge.database.transaction() as session:
        [anomaly] = session.execute(select(Anomaly.kind)).scalars()
    assert anomaly == "price_unreadable"

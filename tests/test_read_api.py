"""The read API's reads: a page of orders, or one order with its events, in one statement
however many rows it holds, outside a transaction; pages by id (or, since a time, by
update)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, event

from tests.sample_plugin import PRICE
from tests.test_hold import HOLD_MS, T0, Worker, working
from waimai_bridge.store.database import Database
from waimai_bridge.web.views import BadCursor, OrderPage, find_order, list_orders


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[Worker]:
    with working(database, tmp_path, "[anomalies]\ninterval_seconds = 0") as made:
        yield made


def stored(worker: Worker, count: int) -> None:
    """``count`` orders stored, each with a line and an unmapped-SKU anomaly."""
    orders = [f"R-{n}" for n in range(count)]
    for n, order in enumerate(orders):
        worker.receive(order, "order.created", T0 + n, price=PRICE)
        worker.receive(order, "order.accepted", T0 + n)
    worker.apply()
    worker.now = T0 + count + HOLD_MS + 1
    worker.release(*orders)


@contextmanager
def counted(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        if args[2] != "BEGIN":  # SQLite's deferred BEGIN, taken in the same process
            statements.append(args[2])

    engines = {database.engine, database.reading_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def page(
    worker: Worker, limit: int, cursor: str | None = None, since_ms: int | None = None
) -> tuple[OrderPage, int]:
    database = worker.bridge.database
    with counted(database) as statements:
        found = database.read(
            lambda connection: list_orders(
                connection, limit=limit, cursor=cursor, since_ms=since_ms
            )
        )
    return found, len(statements)


def test_a_page_is_one_statement_for_three_orders_as_for_thirty(worker: Worker) -> None:
    stored(worker, 30)
    small, small_reads = page(worker, 3)
    large, large_reads = page(worker, 30)
    assert len(small.items) == 3
    assert len(large.items) == 30
    assert small_reads == large_reads == 1
    for order in large.items:
        assert [item.sku_code for item in order.items] == ["SKU-1"]
        assert [anomaly.kind for anomaly in order.anomalies] == ["unmapped_sku"]
        assert order.events is None


def test_pages_follow_each_other_by_id(worker: Worker) -> None:
    stored(worker, 7)
    seen: list[int] = []
    cursor = None
    while True:
        found, _ = page(worker, 3, cursor)
        seen += [order.id for order in found.items]
        if found.next_cursor is None:
            break
        cursor = found.next_cursor
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 7


def dish(n: int) -> str:
    """A line's name that JSON must escape, gathered by the database and read back."""
    return f'鱼香 "dish" {n}\\ \t/'


def test_an_order_is_one_statement_with_its_rows_in_order(worker: Worker) -> None:
    lines = [
        {
            **PRICE["items"][0],
            "sku_code": f"SKU-{n}",
            "platform_sku_id": str(n),
            "name": dish(n),
        }
        for n in (3, 1, 2)
    ]
    worker.receive("MANY", "order.created", T0, price={**PRICE, "items": lines})
    worker.receive("MANY", "order.accepted", T0 + 1)
    worker.apply()
    worker.now = T0 + HOLD_MS + 1
    worker.release("MANY")
    for n, code in enumerate(["rider.at_store", "rider.delivering", "rider.delivered"]):
        worker.receive("MANY", code, worker.now + 1000 + n)
    worker.apply()
    database = worker.bridge.database
    order_id = database.read(
        lambda connection: list_orders(connection, platform_order_id="MANY").items[0].id
    )
    with counted(database) as statements:
        shown = database.read(lambda connection: find_order(connection, order_id))
    assert len(statements) == 1
    assert shown is not None
    assert [(item.line, item.name) for item in shown.items] == [
        (1, dish(3)), (2, dish(1)), (3, dish(2))
    ]  # fmt: skip
    assert shown.price is not None
    assert [item.name for item in shown.price.items] == [dish(3), dish(1), dish(2)]
    assert shown.events is not None
    assert [event.native_code for event in shown.events][:2] == ["order.created", "order.accepted"]
    assert [event.id for event in shown.events] == sorted(event.id for event in shown.events)
    assert len(shown.events) == 5
    kinds = [anomaly.kind for anomaly in shown.anomalies]
    assert kinds.count("unmapped_sku") == 3
    assert [a.id for a in shown.anomalies] == sorted(a.id for a in shown.anomalies)
    assert [a.detail for a in shown.anomalies if a.kind == "unmapped_sku"] == [
        f"line {n} ({dish(sku)}): SKU code 'SKU-{sku}' maps to no product"
        for n, sku in ((1, 3), (2, 1), (3, 2))
    ]


def test_a_read_on_postgresql_holds_no_transaction_open(postgres_database: Database) -> None:
    def read(connection: Connection) -> psycopg.pq.TransactionStatus:
        assert list_orders(connection).items == []
        assert find_order(connection, 1) is None
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        return driver.info.transaction_status

    assert postgres_database.read(read) == psycopg.pq.TransactionStatus.IDLE


def touched(worker: Worker, order: str, at_ms: int) -> None:
    """An event of ``order`` applied at ``at_ms``: the order is updated then."""
    worker.now = at_ms
    worker.receive(order, "rider.delivering", at_ms)
    worker.apply()


def test_pages_since_a_time_follow_the_updates_then_the_ids(worker: Worker) -> None:
    stored(worker, 6)
    later = worker.now + 60_000
    for n, order in enumerate(["R-4", "R-1", "R-5"]):
        touched(worker, order, later + n * 1000)
    touched(worker, "R-2", later + 1000)  # updated in the same millisecond as R-1
    with worker.bridge.database.transaction() as session:
        ids = {order.platform_order_id: order.id for order in list_orders(session).items}

    seen: list[str] = []
    cursor = None
    while True:
        found, reads = page(worker, 2, cursor, since_ms=later)
        assert reads == 1
        seen += [order.platform_order_id for order in found.items]
        if found.next_cursor is None:
            break
        cursor = found.next_cursor
        assert cursor.split(".")[1] == str(ids[seen[-1]])
    tied = sorted(["R-1", "R-2"], key=lambda name: ids[name])
    assert seen == ["R-4", *tied, "R-5"]


def test_a_cursor_of_another_listing_is_refused(worker: Worker) -> None:
    stored(worker, 3)
    by_id, _ = page(worker, 1)
    by_update, _ = page(worker, 1, since_ms=0)
    assert by_id.next_cursor is not None
    assert "." not in by_id.next_cursor
    assert by_update.next_cursor is not None
    assert "." in by_update.next_cursor
    with pytest.raises(BadCursor):
        page(worker, 1, cursor=by_update.next_cursor)
    with pytest.raises(BadCursor):
        page(worker, 1, cursor=by_id.next_cursor, since_ms=0)
    for wrong in ("", "x", "1.", ".1", "1.2.3", "-1", "١٢", str(2**63)):
        with pytest.raises(BadCursor):
            page(worker, 1, cursor=wrong)


def test_reads_on_sqlite_neither_wait_for_nor_hold_up_the_writer(tmp_path: Path) -> None:
    import sqlite3

    database = Database(f"sqlite:///{tmp_path / 'reads.sqlite3'}")
    database.ensure_schema()
    writer = sqlite3.connect(tmp_path / "reads.sqlite3", isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the writer lock
    try:
        # a read taking the lock would fail here
        assert database.read(lambda connection: list_orders(connection)).items == []
        assert database.read(lambda connection: find_order(connection, 1)) is None
        with database.reading() as session:
            assert list_orders(session).items == []
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    def read_then_write(connection: Connection) -> None:  # while a read is open, a writer writes
        list_orders(connection)
        blocked = sqlite3.connect(tmp_path / "reads.sqlite3", isolation_level=None, timeout=0)
        blocked.execute("BEGIN IMMEDIATE")
        blocked.execute("ROLLBACK")
        blocked.close()

    database.read(read_then_write)
    database.dispose()

"""The migrations as operators run them: a populated database upgraded through every
revision, downgraded and upgraded again, and the schema guard refusing an older one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Connection, MetaData, Table, func, inspect, select, text

from waimai_bridge.cli import cli
from waimai_bridge.store.database import (
    Database,
    MigrationFailed,
    SchemaNotCurrent,
    alembic_config,
    head_revision,
)
from waimai_bridge.store.tables import (
    Anomaly,
    Base,
    Delivery,
    InboxEvent,
    Order,
    OrderEvent,
    OrderItem,
    OutboundAction,
    PlatformOrder,
    SkuMapping,
    Subscription,
)

T0 = 1_716_181_200_000


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


SEEDS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "0001": {
        "orders": [
            {"id": 1, "platform": "eleme", "platform_order_id": "E-1", "store_id": "S1",
             "state": "delivering", "rider_state": "picked_up", "refunded_amount_fen": 300,
             "price": {"total_fen": 4200, "lines": [{"name": "宫保鸡丁", "fen": 2100}]},
             "version": 3, "created_at_ms": T0, "updated_at_ms": T0 + 3},
        ],
        "platform_orders": [
            {"id": 1, "platform": "eleme", "platform_order_id": "E-1", "store_id": "S1",
             "state_code": 18, "order_state": "delivering", "latest_payload": {"orderId": "E-1"},
             "price": {"total_fen": 4200}, "order_id": 1, "hold_started_at_ms": None,
             "discarded": False, "created_at_ms": T0, "updated_at_ms": T0 + 3},
            {"id": 2, "platform": "meituan", "platform_order_id": "M-2", "store_id": "S2",
             "state_code": None, "order_state": None, "latest_payload": {"order_id": "M-2"},
             "price": None, "order_id": None, "hold_started_at_ms": T0 + 5,
             "discarded": False, "created_at_ms": T0 + 5, "updated_at_ms": T0 + 5},
        ],
        "order_items": [
            {"id": 1, "order_id": 1, "line": 1, "sku_code": "SKU-1", "platform_sku_id": "901",
             "name": "宫保鸡丁", "quantity": 2, "unit_original_fen": 2300,
             "unit_paid_fen": 2100, "product_id": "P-1", "unmapped": False},
        ],
        "order_events": [
            {"id": 1, "platform_order_pk": 1, "platform": "eleme", "idempotency_key": "E-1:0",
             "native_code": "order.created", "state_code": 1, "kitchen_step": None,
             "partial": False, "refund_amount_fen": None, "refunded_items": [],
             "reason": None, "platform_time_ms": T0, "received_at_ms": T0 + 1,
             "payload": {"orderId": "E-1"}},
            {"id": 2, "platform_order_pk": 1, "platform": "eleme", "idempotency_key": "E-1:1",
             "native_code": "refund.partial", "state_code": None, "kitchen_step": None,
             "partial": True, "refund_amount_fen": 300, "refunded_items": [{"line": 1}],
             "reason": "少了一份米饭", "platform_time_ms": T0 + 2, "received_at_ms": T0 + 3,
             "payload": {"orderId": "E-1", "refund": 300}},
        ],
        "anomalies": [
            {"id": 1, "platform_order_pk": 1, "order_id": 1, "kind": "lines",
             "detail": "a line without a SKU", "created_at_ms": T0 + 1},
        ],
        "sku_mappings": [
            {"platform": "eleme", "sku_code": "SKU-1", "product_id": "P-1",
             "updated_at_ms": T0},
        ],
    },
    "0002": {
        "inbox": [
            {"id": 1, "platform": "meituan", "idempotency_key": "M-2:0", "store_id": "S2",
             "shard": 3, "platform_order_id": "M-2", "native_code": "order.created",
             "platform_time_ms": T0 + 4, "payload": {"order_id": "M-2"},
             "received_at_ms": T0 + 5, "status": "pending", "attempts": 0, "error": None,
             "enqueued_at_ms": T0 + 5, "done_at_ms": None},
            {"id": 2, "platform": "eleme", "idempotency_key": "E-1:18", "store_id": "S1",
             "shard": 1, "platform_order_id": "E-1", "native_code": "18",
             "platform_time_ms": T0 + 2, "payload": {"orderId": "E-1"},
             "received_at_ms": T0 + 3, "status": "done", "attempts": 1, "error": None,
             "enqueued_at_ms": T0 + 3, "done_at_ms": T0 + 3},
        ],
    },
    "0004": {
        "subscriptions": [
            {"id": 1, "url": "https://pos.example/updates", "secret": "s3cret",
             "store_ids": ["S1"], "platforms": None, "states": ["delivering"],
             "created_at_ms": T0},
        ],
        "deliveries": [
            {"id": 1, "subscription_id": 1, "order_id": 1, "kind": "order.updated",
             "body": '{"order_id": 1}', "status": "pending", "attempts": 1,
             "next_attempt_at_ms": T0 + 60_000, "last_error": "HTTP 503",
             "created_at_ms": T0 + 3, "delivered_at_ms": None},
        ],
        "outbound_actions": [
            {"id": 1, "idempotency_key": "confirm:E-1", "action": "confirm",
             "platform": "eleme", "platform_order_id": "E-1", "store_id": "S1",
             "order_id": 1, "reason": None, "status": "done", "attempts": 1,
             "attempt_limit": 5, "next_attempt_at_ms": T0, "in_flight_since_ms": None,
             "result_code": "ok", "result_message": None, "created_at_ms": T0,
             "updated_at_ms": T0 + 1},
        ],
    },
}  # fmt: skip
"""Rows written at a revision, into the tables it has: what an operator's database holds."""


def seed(connection: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Insert ``rows`` into the tables as the current revision defines them."""
    for name, table_rows in rows.items():
        table = Table(name, MetaData(), autoload_with=connection)
        connection.execute(table.insert(), table_rows)


def seeded_counts(revision: str) -> dict[str, int]:
    """The rows seeded into each table by ``revision`` and the revisions before it."""
    seeded = [rows for at, rows in SEEDS.items() if at <= revision]
    return {name: len(table_rows) for rows in seeded for name, table_rows in rows.items()}


def row_counts(connection: Connection) -> dict[str, int]:
    """The rows of each table the database has (but Alembic's own)."""
    counts = {}
    for name in inspect(connection).get_table_names():
        if name != "alembic_version":
            table = Table(name, MetaData(), autoload_with=connection)
            counts[name] = connection.execute(select(func.count()).select_from(table)).scalar()
    return {name: count for name, count in counts.items() if count}


def schema(connection: Connection) -> dict[str, Any]:
    """The tables, columns, indexes and constraints the database has, comparable."""
    inspector = inspect(connection)
    tables = [name for name in inspector.get_table_names() if name != "alembic_version"]
    return {
        name: {
            "columns": sorted(
                (column["name"], str(column["type"]), column["nullable"])
                for column in inspector.get_columns(name)
            ),
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (unique["name"], tuple(unique["column_names"]))
                for unique in inspector.get_unique_constraints(name)
            ),
            "foreign keys": sorted(
                (key["name"], tuple(key["constrained_columns"]), key["referred_table"])
                for key in inspector.get_foreign_keys(name)
            ),
        }
        for name in tables
    }


def downgrade(database: Database, revision: str) -> None:
    """Downgrade the schema to ``revision`` with the bridge's migrations."""
    database.downgrade(revision)


def differences(database: Database) -> list[Any]:
    """What the schema lacks or has beyond the bridge's tables (empty when it matches)."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found: list[Any] = compare_metadata(context, Base.metadata)
        return found


def check_the_seeded_rows(database: Database) -> None:
    """The rows seeded at the early revisions, read at head through the bridge's tables."""
    with database.transaction() as session:
        order = session.get(Order, 1)
        assert order is not None
        assert (order.platform, order.platform_order_id, order.state, order.rider_state) == (
            "eleme", "E-1", "delivering", "picked_up",
        )  # fmt: skip
        assert (order.refunded_amount_fen, order.version) == (300, 3)
        assert order.price == {"total_fen": 4200, "lines": [{"name": "宫保鸡丁", "fen": 2100}]}

        linked, held = session.get(PlatformOrder, 1), session.get(PlatformOrder, 2)
        assert linked is not None
        assert held is not None
        assert (linked.order_id, linked.store_inferred) == (1, False)
        assert (held.order_id, held.hold_started_at_ms, held.discarded) == (None, T0 + 5, False)
        assert held.store_inferred is False

        [item] = session.scalars(select(OrderItem)).all()
        assert (item.name, item.quantity, item.unit_paid_fen, item.unmapped) == (
            "宫保鸡丁", 2, 2100, False,
        )  # fmt: skip
        events = session.scalars(select(OrderEvent).order_by(OrderEvent.id)).all()
        assert [(event.idempotency_key, event.partial) for event in events] == [
            ("E-1:0", False),
            ("E-1:1", True),
        ]
        assert (events[1].reason, events[1].refunded_items) == ("少了一份米饭", [{"line": 1}])
        [anomaly] = session.scalars(select(Anomaly)).all()
        assert (anomaly.kind, anomaly.order_id) == ("lines", 1)
        [mapping] = session.scalars(select(SkuMapping)).all()
        assert (mapping.platform, mapping.sku_code, mapping.product_id) == (
            "eleme", "SKU-1", "P-1",
        )  # fmt: skip

        pending, done = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        assert (pending.idempotency_key, pending.status, pending.shard) == ("M-2:0", "pending", 3)
        assert pending.store_inferred is False
        assert pending.payload == {"order_id": "M-2"}, "a pending event keeps its payload"
        assert (done.idempotency_key, done.payload) == ("E-1:18", {}), "the event log has it"

        [subscription] = session.scalars(select(Subscription)).all()
        assert (subscription.store_ids, subscription.platforms) == (["S1"], None)
        [delivery] = session.scalars(select(Delivery)).all()
        assert (delivery.subscription_id, delivery.status, delivery.last_error) == (
            1, "pending", "HTTP 503",
        )  # fmt: skip
        [action] = session.scalars(select(OutboundAction)).all()
        assert (action.idempotency_key, action.status, action.order_id) == (
            "confirm:E-1", "done", 1,
        )  # fmt: skip
        assert action.request_key is None


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database without any table, of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    database = Database(url)
    yield database
    database.dispose()


def test_the_migrations_are_one_line_of_revisions() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head_revision()]
    assert len(script.get_bases()) == 1
    assert revisions()[-1] == head_revision()
    assert set(SEEDS) < set(revisions())


def pairs() -> list[tuple[str, str]]:
    """Every revision and the one before it, newest first: the steps down to the first."""
    return list(reversed(list(zip(revisions()[1:], revisions(), strict=False))))


def test_each_downgrade_restores_the_schema_its_upgrade_found(empty: Database) -> None:
    schemas: dict[str, dict[str, Any]] = {}
    for revision in revisions():
        empty.migrate(revision)
        with empty.engine.connect() as connection:
            schemas[revision] = schema(connection)
    assert differences(empty) == []

    for revision, previous in pairs():
        downgrade(empty, previous)
        assert empty.current_revision() == previous
        with empty.engine.connect() as connection:
            assert schema(connection) == schemas[previous], f"downgraded from {revision}"
    downgrade(empty, "base")
    assert empty.current_revision() is None
    with empty.engine.connect() as connection:
        assert schema(connection) == {}

    empty.migrate()
    assert empty.current_revision() == head_revision()
    assert differences(empty) == []


@pytest.mark.parametrize("empty", ["sqlite", "postgresql"], indirect=True)
def test_a_populated_database_upgrades_through_every_revision_and_back(
    empty: Database,
) -> None:
    for revision in revisions():
        empty.migrate(revision)
        assert empty.current_revision() == revision
        with empty.engine.begin() as connection:
            seed(connection, SEEDS.get(revision, {}))
            assert row_counts(connection) == seeded_counts(revision)
    check_the_seeded_rows(empty)
    assert differences(empty) == []

    # down one revision at a time: the rows of the tables that stay are kept
    for revision, previous in pairs():
        downgrade(empty, previous)
        with empty.engine.connect() as connection:
            counts = row_counts(connection)
            assert set(inspect(connection).get_table_names()) >= set(seeded_counts(previous))
        assert counts == seeded_counts(previous), f"downgraded from {revision}"

    # and up again: what the first revision held is read at head as it was written
    empty.migrate()
    assert empty.current_revision() == head_revision()
    assert differences(empty) == []
    with empty.transaction() as session:
        order = session.get(Order, 1)
        assert order is not None
        assert (order.platform_order_id, order.state, order.price) == (
            "E-1", "delivering", {"total_fen": 4200, "lines": [{"name": "宫保鸡丁", "fen": 2100}]},
        )  # fmt: skip
        held = session.get(PlatformOrder, 2)
        assert held is not None
        assert (held.hold_started_at_ms, held.store_inferred) == (T0 + 5, False)


@pytest.mark.parametrize("empty", ["sqlite", "postgresql"], indirect=True)
def test_going_back_before_payloads_were_stored_once_refills_the_latest_payload(
    empty: Database,
) -> None:
    for revision in revisions()[: revisions().index("0013")]:
        empty.migrate(revision)
        with empty.engine.begin() as connection:
            seed(connection, SEEDS.get(revision, {}))
    empty.migrate("0013")
    downgrade(empty, "0012")
    with empty.engine.connect() as connection:
        found = connection.execute(
            text("SELECT id, latest_payload FROM platform_orders ORDER BY id")
        ).all()
    # order 1's latest logged event; order 2 has logged none
    assert [(pk, json_value(payload)) for pk, payload in found] == [
        (1, {"orderId": "E-1", "refund": 300}), (2, {}),
    ]  # fmt: skip


def json_value(value: Any) -> Any:
    """A JSON column read through plain SQL: text on SQLite, decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def at_the_revision_before_head(url: str) -> str:
    """Migrate the database at ``url`` to the revision before head; that revision."""
    previous = revisions()[-2]
    database = Database(url)
    try:
        database.migrate(previous)
    finally:
        database.dispose()
    return previous


def test_the_schema_guard_refuses_a_database_at_an_older_revision(
    empty_postgres_url: str,
) -> None:
    previous = at_the_revision_before_head(empty_postgres_url)
    database = Database(empty_postgres_url)
    try:
        with pytest.raises(SchemaNotCurrent) as refused:
            database.ensure_schema()
        assert str(refused.value) == (
            f"the database schema is at {previous}, this version needs {head_revision()}: "
            "run `waimai-bridge migrate`"
        )
        assert database.current_revision() == previous  # checked, never changed
    finally:
        database.dispose()


def test_a_command_refuses_an_older_schema_until_it_is_migrated(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = at_the_revision_before_head(empty_postgres_url)
    monkeypatch.setenv("WAIMAI_DATABASE_URL", empty_postgres_url)
    monkeypatch.delenv("WAIMAI_CONFIG", raising=False)
    runner = CliRunner()

    refused = runner.invoke(cli, ["skus", "lookup", "eleme", "SKU-1"])
    assert refused.exit_code == 1, refused.output
    assert (
        f"the database schema is at {previous}, this version needs {head_revision()}: "
        "run `waimai-bridge migrate`"
    ) in refused.output

    migrated = runner.invoke(cli, ["migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert migrated.output.endswith(f"upgraded from {previous} to {head_revision()}\n")
    looked_up = runner.invoke(cli, ["skus", "lookup", "eleme", "SKU-1"])
    assert looked_up.output == "eleme\tSKU-1\t(unmapped)\n"  # read, not refused


def test_an_embedded_sqlite_database_at_an_older_revision_is_upgraded(sqlite_url: str) -> None:
    previous = at_the_revision_before_head(sqlite_url)
    database = Database(sqlite_url)
    try:
        database.ensure_schema()
        assert database.current_revision() == head_revision() != previous
        assert differences(database) == []
    finally:
        database.dispose()


def test_a_migration_that_leaves_a_dangling_reference_on_sqlite_is_rolled_back(
    sqlite_url: str,
) -> None:
    database = Database(sqlite_url)
    database.migrate(revisions()[-2])
    with database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA foreign_keys=OFF")
        driver.execute(
            "INSERT INTO order_items (order_id, line, name, quantity, unit_original_fen, "
            "unit_paid_fen, unmapped) VALUES (404, 1, 'dangling', 1, 100, 100, 0)"
        )
        driver.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(MigrationFailed, match="order_items row 1 → orders"):
        database.migrate()
    assert database.current_revision() == revisions()[-2]  # the upgrade was rolled back
    database.dispose()

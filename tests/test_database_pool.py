"""The PostgreSQL pool's pings: a connection idle for ``IDLE_PING_SECONDS`` is pinged when
next handed out and replaced when dead; one used more recently is handed out unpinged, so a
server that dropped it fails the transaction then run, once (a read runs again), and the
pool starts afresh."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from waimai_bridge.store import database as database_module
from waimai_bridge.store.database import Database


@pytest.fixture
def database(empty_postgres_url: str) -> Iterator[Database]:
    made = Database(empty_postgres_url)
    yield made
    made.dispose()


def backend(database: Database) -> int:
    """The server process of the connection a read is handed."""
    pid: int = database.read(
        lambda connection: connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    )
    return pid


def transaction_backend(database: Database) -> int:
    """The server process of the connection a transaction is handed."""
    with database.transaction() as session:
        pid: int = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def drop_connections(url: str) -> int:
    """Terminate every other connection to the database, as a server restart would."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            statement = text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            dropped: int = connection.execute(statement).scalar_one()
            return dropped
    finally:
        admin.dispose()


def test_a_connection_idle_long_enough_is_pinged_and_replaced_when_dead(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend(database)
    assert backend(database) == first  # the pool hands the same connection back
    monkeypatch.setattr(database_module, "IDLE_PING_SECONDS", 0.0)
    assert drop_connections(database.url) == 1
    replaced = backend(database)  # no error: the ping found it dead
    assert replaced != first
    assert backend(database) == replaced


def test_a_connection_used_lately_is_not_pinged_so_a_drop_fails_one_transaction(
    database: Database,
) -> None:
    first = transaction_backend(database)
    assert drop_connections(database.url) == 1
    with pytest.raises(OperationalError):
        transaction_backend(database)
    assert transaction_backend(database) != first  # the pool started afresh


def test_a_read_handed_a_dropped_connection_runs_again_on_a_new_one(database: Database) -> None:
    first = backend(database)
    assert drop_connections(database.url) == 1
    assert backend(database) != first  # no error: the read ran again
    calls: list[int] = []

    def failing(connection: Connection) -> None:
        calls.append(1)
        connection.execute(text("SELECT 1 / 0"))

    with pytest.raises(DBAPIError):  # an error of the statement itself is not run again
        database.read(failing)
    assert calls == [1]

"""The database: one engine per URL, transactions that serialise writers, migrations.

SQLite (embedded mode) starts every transaction with ``BEGIN IMMEDIATE``, taking the
writer lock up front, so a read-then-write transaction never fails half-way and two
workers never interleave; PostgreSQL serialises per order with ``SELECT … FOR UPDATE``.
What only reads (the board, the gauges) uses :meth:`Database.reading`, which on SQLite
takes no writer lock; reads of one statement each (the order API) use
:meth:`Database.read`, outside a transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from waimai_bridge.errors import WaimaiBridgeError

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 5
"""How long connecting to PostgreSQL may take (a ``connect_timeout`` in the URL wins)."""
STATEMENT_TIMEOUT_MS = 30_000
"""How long one statement may run on PostgreSQL before it is cancelled (an
``options=-c statement_timeout=…`` in the URL wins; migrations have none)."""
STATEMENT_TIMEOUT = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
POOL_TIMEOUT_SECONDS = 10
"""How long a thread waits for a pooled connection before its work fails."""
POOL_SIZE = 20
"""Connections kept open per process, at most: more than the threads that use one at once
(the web's thread pool, a worker's threads, the sweeper), since opening one costs more than
a request."""


def _sqlite_engine(url: str, *, begin: str = "BEGIN IMMEDIATE") -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" below start it
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


IDLE_PING_SECONDS = 10.0
"""How long a pooled PostgreSQL connection may sit unused before it is pinged when next
handed out (and replaced when dead); one used more recently is handed out as it is."""
_USED_AT = "waimai.used_at"


def _ping_when_idle(engine: Engine) -> None:
    """Ping the connections ``engine`` hands out that were idle for :data:`IDLE_PING_SECONDS`:
    a pre-ping on every checkout would cost a round trip per transaction or read. A server
    that dies under a busy pool fails the statements then in flight once (:meth:`Database.read`
    runs its query again); the pool then starts afresh."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used_at = record.info.get(_USED_AT)
        if used_at is None or time.monotonic() - used_at < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            record.info.pop(_USED_AT, None)
            raise DisconnectionError("a pooled connection idle too long was dead") from exc


RELAXED = "-c synchronous_commit=off"
"""The setting of the connections of non-durable transactions (added to the URL's own)."""


DURABLE = "waimai.durable"
"""``session.info`` key: the transaction must commit durably, whatever it was opened as
(see :func:`require_durable`)."""
_DURABLE_COMMIT = text("SET LOCAL synchronous_commit TO on")


def require_durable(session: Session) -> None:
    """Make the commit of ``session``'s transaction durable even when it was opened with
    ``durable=False``: it writes something the outside world will be told of (an update
    for subscribers, a new order's id), and a database crash must not take back what
    someone was told."""
    session.info[DURABLE] = True


class SchemaNotCurrent(WaimaiBridgeError):
    """The database schema is not the one this code needs."""


class MigrationFailed(WaimaiBridgeError):
    """A migration left the database inconsistent; it was rolled back."""


def _enforce_foreign_keys(connection: Connection, on: bool) -> None:
    """Turn SQLite's foreign keys on or off: only outside a transaction, so on the driver's
    own connection (SQLAlchemy's would begin one)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _foreign_key_problems(connection: Connection) -> list[str]:
    """SQLite's ``foreign_key_check``: each row whose reference leads nowhere, at most ten."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    return [f"{table} row {rowid} → {parent}" for table, rowid, parent, _ in rows[:10]]


class Database:
    """A database URL made usable: transactions and migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url)
            relaxed = self.engine
            # WAL lets readers go on beside the one writer: reads take no writer lock
            reading = _sqlite_engine(url, begin="BEGIN")
        else:
            pool = {
                "pool_size": POOL_SIZE, "max_overflow": POOL_SIZE, "pool_recycle": 3600,
                "pool_timeout": POOL_TIMEOUT_SECONDS,
                "hide_parameters": True,
            }  # fmt: skip
            given = parsed.query.get("options", "")
            options = " ".join([STATEMENT_TIMEOUT, *([given] if isinstance(given, str) else given)])
            timeouts = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} | {
                key: value for key, value in parsed.query.items() if key == "connect_timeout"
            }
            self.engine = create_engine(url, connect_args={**timeouts, "options": options}, **pool)
            # its own connections: setting it per transaction would cost a statement each
            relaxed = create_engine(
                url, connect_args={**timeouts, "options": f"{options} {RELAXED}"}, **pool
            )
            for engine in (self.engine, relaxed):
                _ping_when_idle(engine)
            reading = self.engine
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._relaxed = relaxed
        self._relaxed_sessions = sessionmaker(relaxed, expire_on_commit=False)
        self.reading_engine = reading
        """The engine of :meth:`reading` (on PostgreSQL, :attr:`engine` itself)."""
        self._reading_sessions = sessionmaker(reading, expire_on_commit=False)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def __repr__(self) -> str:
        return f"<Database {make_url(self.url).render_as_string(hide_password=True)}>"

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error.

        ``durable=False`` lets PostgreSQL acknowledge the commit before it is on disk: a
        database crash may then lose the transaction whole (never half of it). For work
        that is done again when lost, such as applying inbox events; a transaction that
        calls :func:`require_durable` commits durably all the same.
        """
        sessions = self._sessions if durable else self._relaxed_sessions
        with sessions.begin() as session:
            yield session
            if not durable and session.info.pop(DURABLE, False) and self.dialect != "sqlite":
                session.execute(_DURABLE_COMMIT)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads, in one transaction rolled back when the block ends; on
        SQLite it does not wait for, nor hold up, the writer."""
        with self._reading_sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    def read(self, query: Callable[[Connection], T]) -> T:
        """``query``'s answer, run on a connection outside a transaction, for reads of one
        statement each (a statement sees one snapshot): on PostgreSQL no BEGIN and ROLLBACK
        around it; on SQLite, as :meth:`reading`, no writer lock. Run once more on a new
        connection when the one it was handed is found dead (the pool pings only
        connections idle for :data:`IDLE_PING_SECONDS`)."""
        engine = self._autocommit if self.dialect == "postgresql" else self.reading_engine
        try:
            with engine.connect() as connection:
                return query(connection)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with engine.connect() as connection:
            return query(connection)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for one durable statement, without the ORM: for hot paths.

        On PostgreSQL it runs in autocommit mode (a single statement is atomic anyway), which
        saves the round trips of BEGIN and COMMIT; SQLite gets its usual transaction.
        """
        if self.dialect == "postgresql":
            with self._autocommit.connect() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` with the Alembic migrations."""
        with self._changing_schema() as connection:
            command.upgrade(alembic_config(connection), revision)

    def downgrade(self, revision: str) -> None:
        """Downgrade the schema to ``revision`` (``"base"``: no table left)."""
        with self._changing_schema() as connection:
            command.downgrade(alembic_config(connection), revision)

    @contextmanager
    def _changing_schema(self) -> Iterator[Connection]:
        """A connection in one transaction for migrations. On SQLite, foreign keys are not
        enforced meanwhile (SQLite changes a table by copying it, dropping the one other
        tables refer to) and checked before the commit."""
        with self.engine.connect() as connection:
            sqlite = self.dialect == "sqlite"
            if sqlite:
                _enforce_foreign_keys(connection, False)
            try:
                with connection.begin():
                    if self.dialect == "postgresql":  # a migration may rewrite a large table
                        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
                    yield connection
                    if sqlite and (broken := _foreign_key_problems(connection)):
                        raise MigrationFailed(f"the migration broke foreign keys: {broken}")
            finally:
                if sqlite:
                    _enforce_foreign_keys(connection, True)

    def current_revision(self) -> str | None:
        """The migration the database is at; None when it has none."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def ensure_schema(self) -> None:
        """Make sure the schema is current: SQLite (embedded) is upgraded, others are checked."""
        if self.dialect == "sqlite":
            self.migrate()
            return
        current, head = self.current_revision(), head_revision()
        if current != head:
            raise SchemaNotCurrent(
                f"the database schema is at {current or 'no revision'}, this version needs "
                f"{head}: run `waimai-bridge migrate`"
            )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self._relaxed.dispose()
        self.reading_engine.dispose()


def alembic_config(connection: Any = None) -> AlembicConfig:
    """The Alembic configuration of the bridge's migrations, bound to ``connection``."""
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(resources.files("waimai_bridge.store").joinpath("migrations"))
    )
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration this version of the code has."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package ships its migrations
    return head

"""Fixtures that give tests real services.

- ``sqlite_url``: a ``sqlite:///`` URL of a fresh file in the test's ``tmp_path``.
- ``postgres_url``: a throwaway PostgreSQL database ``waimai_test_<hex>``, created
  once per session on the server behind ``WAIMAI_TEST_POSTGRES_URL`` (default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and dropped afterwards.
- ``empty_postgres_url``: the same, but a database of the test's own, dropped after it.
- ``database``: a migrated, empty :class:`Database`, once on SQLite and once on PostgreSQL.
- ``install``: installs a one-module plugin distribution on ``sys.path`` for this test.
- ``redis_url``: Redis db index 15 (``WAIMAI_TEST_REDIS_URL`` overrides it),
  flushed before and after each test.

PostgreSQL and Redis are required: when one cannot be reached the fixture fails
the test, it never skips. ``.ci/services`` (or ``make services``) starts both.
"""

from __future__ import annotations

import os
import secrets
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from waimai_bridge_meituan import plugin as meituan_plugin

from waimai_bridge.hookcalls import Platform
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Base

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
CONNECT_TIMEOUT_SECONDS = 5


def _redis_url_without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit(parts._replace(netloc=user + host))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test's own."""
    return f"sqlite:///{tmp_path / 'waimai.sqlite3'}"


@contextmanager
def _fresh_postgres_database() -> Iterator[str]:
    """Create ``waimai_test_<hex>`` on the test server, yield its URL, drop it after."""
    admin_url = make_url(os.environ.get("WAIMAI_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    shown = admin_url.render_as_string(hide_password=True)
    name = f"waimai_test_{secrets.token_hex(6)}"
    engine = create_engine(
        admin_url,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0].rstrip(".")
        pytest.fail(
            f"PostgreSQL is required but cannot be used at {shown}: {reason}. "
            "Run .ci/services (or make services) to start it.",
            pytrace=False,
        )
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session; dropped at the end."""
    with _fresh_postgres_database() as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own, without any table; dropped after it."""
    with _fresh_postgres_database() as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis db 15 (by default), empty at the start and flushed at the end."""
    url = os.environ.get("WAIMAI_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        client.flushdb()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(
            f"Redis is required but cannot be used at {_redis_url_without_password(url)}: "
            f"{str(exc).rstrip('.')}. Run .ci/services (or make services) to start it.",
            pytrace=False,
        )
    try:
        yield url
    finally:
        try:
            client.flushdb()
        finally:
            client.close()


Install = Callable[..., None]
"""``install(distribution, module, source, *, entry_point)``; see the ``install`` fixture."""


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Install:
    """Install a one-module distribution registering entry points in ``waimai_bridge``."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(distribution: str, module: str, source: str, *, entry_point: str) -> None:
        """Write ``module`` and a dist-info naming it under ``entry_point``."""
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = site / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[waimai_bridge]\n{entry_point} = {module}\n", encoding="utf-8"
        )

    return install


def clear(database: Database) -> None:
    """Delete every row of the bridge's tables."""
    with database.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@pytest.fixture(scope="session")
def _migrated_postgres(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest) -> Database:
    """The session's PostgreSQL database, migrated and empty."""
    database: Database = request.getfixturevalue("_migrated_postgres")
    clear(database)
    return database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file, then the session's PostgreSQL database."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
        database.migrate()
        yield database
        database.dispose()
    else:
        yield request.getfixturevalue("postgres_database")


@pytest.fixture(scope="module")
def meituan() -> Platform:
    """The Meituan plugin behind the core's checked hook calls, with the reference
    JSON-Schema validator as well."""
    registry = PluginRegistry(reference=True)
    registry.add("meituan", meituan_plugin)
    return registry.platform("meituan")

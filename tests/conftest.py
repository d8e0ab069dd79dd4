"""Fixtures that give tests real services.

- ``sqlite_url``: a ``sqlite:///`` URL of a fresh file in the test's ``tmp_path``.
- ``postgres_url``: a throwaway PostgreSQL database ``waimai_test_<hex>``, created
  once per session on the server behind ``WAIMAI_TEST_POSTGRES_URL`` (default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and dropped afterwards.
- ``empty_postgres_url``: the same, but a database of the test's own, dropped after it.
- ``database``: a migrated, empty :class:`Database`, once on SQLite and once on PostgreSQL.
- ``install``: installs a one-module plugin distribution on ``sys.path`` for this test.
- ``redis_url``: a Redis database of this test run's own, flushed before and after each
  test. The run claims a free db index among 1..15 of the server at ``127.0.0.1:6379``
  (15 first) with a key ``waimai-test:claim:<n>`` in db 0, so two runs at once never
  share one; the claim is released (and the db flushed) when the run ends, or expires
  an hour after the run last used it. ``WAIMAI_TEST_REDIS_URL`` names the database to
  use instead; it is claimed as well when no other run holds it, so claiming runs pass
  it over.

PostgreSQL and Redis are required: when one cannot be reached the fixture fails
the test, it never skips. ``.ci/services`` (or ``make services``) starts both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn
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
REDIS_SERVER_URL = "redis://127.0.0.1:6379"
CLAIMABLE_REDIS_DBS = range(15, 0, -1)
"""The db indexes a test run may claim, in the order it tries them (db 0 holds the claims)."""
CLAIM_SECONDS = 3600
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


def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def _redis_required(url: str, exc: redis.RedisError) -> NoReturn:
    pytest.fail(
        f"Redis is required but cannot be used at {_redis_url_without_password(url)}: "
        f"{str(exc).rstrip('.')}. Run .ci/services (or make services) to start it.",
        pytrace=False,
    )


def claim_key(db: int) -> str:
    """The key in db 0 whose holder owns Redis db ``db`` for its test run."""
    return f"waimai-test:claim:{db}"


_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call(ARGV[2], KEYS[1], unpack(ARGV, 3))
end
return 0
"""
"""Run a command on the claim KEYS[1] only while token ARGV[1] holds it."""


class ClaimTaken(redis.RedisError):
    """Another test run holds the claim of a db index."""


class RedisClaim:
    """A Redis db index claimed for one test run on the server of ``claims`` (db 0): the
    first free one of :data:`CLAIMABLE_REDIS_DBS`, or ``db`` if no run holds it."""

    def __init__(self, claims: redis.Redis, db: int | None = None) -> None:
        self._claims = claims
        self.token = secrets.token_hex(16)
        self.db = self._claim_free() if db is None else db
        if db is not None and not self._take(db):
            raise ClaimTaken(f"db index {db} is claimed by another test run")

    def _take(self, db: int) -> bool:
        return bool(self._claims.set(claim_key(db), self.token, nx=True, ex=CLAIM_SECONDS))

    def _claim_free(self) -> int:
        for db in CLAIMABLE_REDIS_DBS:
            if self._take(db):
                return db
        raise ClaimTaken(
            f"every db index of {CLAIMABLE_REDIS_DBS.stop + 1}..{CLAIMABLE_REDIS_DBS.start} "
            "is claimed by another test run (keys waimai-test:claim:* in db 0)"
        )

    def refresh(self) -> None:
        """Keep the claim another :data:`CLAIM_SECONDS`."""
        self._claims.eval(_IF_HELD, 1, claim_key(self.db), self.token, "EXPIRE", CLAIM_SECONDS)

    def release(self) -> None:
        """Give the db index back (unless the claim expired and another run holds it now)."""
        self._claims.eval(_IF_HELD, 1, claim_key(self.db), self.token, "DEL")

    def close(self) -> None:
        """Close the connection to db 0."""
        self._claims.close()


def _given_redis_db(url: str) -> tuple[str, RedisClaim | None]:
    """The db ``WAIMAI_TEST_REDIS_URL`` names, claimed if no run holds it (so that runs
    that claim one pass it over) and used as it is in any case."""
    db = int(urlsplit(url).path.strip("/") or 0)
    if db == 0:
        return url, None
    claims = _redis_client(urlunsplit(urlsplit(url)._replace(path="/0", query="")))
    try:
        return url, RedisClaim(claims, db)
    except ClaimTaken:
        claims.close()
        return url, None  # held by another run: used all the same, as asked
    except redis.RedisError as exc:
        claims.close()
        _redis_required(url, exc)


@pytest.fixture(scope="session")
def _redis_db() -> Iterator[tuple[str, RedisClaim | None]]:
    """This run's Redis database URL, and its claim when the run holds one."""
    given = os.environ.get("WAIMAI_TEST_REDIS_URL")
    if given:
        url, claim = _given_redis_db(given)
    else:
        claims = _redis_client(f"{REDIS_SERVER_URL}/0")
        try:
            claim = RedisClaim(claims)
        except redis.RedisError as exc:
            claims.close()
            _redis_required(REDIS_SERVER_URL, exc)
        url = f"{REDIS_SERVER_URL}/{claim.db}"
    if claim is None:
        yield url, None
        return
    try:
        yield url, claim
    finally:
        try:
            client = _redis_client(url)
            try:
                client.flushdb()
            finally:
                client.close()
            claim.release()
        finally:
            claim.close()


@pytest.fixture
def redis_url(_redis_db: tuple[str, RedisClaim | None]) -> Iterator[str]:
    """This run's Redis database, empty at the start and flushed at the end."""
    url, claim = _redis_db
    client = _redis_client(url)
    try:
        if claim is not None:
            claim.refresh()
        client.flushdb()
    except redis.RedisError as exc:
        client.close()
        _redis_required(url, exc)
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


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, which tests copy rather than migrate each their own."""
    path = tmp_path_factory.mktemp("migrated") / "bridge.sqlite3"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    database.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file of the test's own (a copy of one migrated
    file), then the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "bridge.sqlite3"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), path)
        database = Database(f"sqlite:///{path}")
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

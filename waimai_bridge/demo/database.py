"""The demo's database: started fresh or kept, and never a database of other data wiped."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from waimai_bridge.errors import WaimaiBridgeError

DEMO_APPLICATION_ID = 0x57424D4F
"""SQLite's ``PRAGMA application_id`` of a database the demo created ("WBMO"): only such a
database is wiped by ``--fresh``."""

DATA_TABLES = ("platform_orders", "sku_mappings", "outbound_actions", "subscriptions", "inbox")
"""The tables whose rows make a database worth keeping."""


class DemoRefused(WaimaiBridgeError):
    """The demo will not run on this database."""


@dataclass(frozen=True)
class Prepared:
    """What was done to the database before the run, and whether the demo owns it."""

    note: str
    owned: bool


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def prepare_database(url: str, *, fresh: bool) -> Prepared:
    """Make the database ready for the demo: with ``fresh``, start it empty — removing a
    SQLite file only when the demo created it — and refuse any database with data of
    another origin. Raises :class:`DemoRefused`."""
    path = sqlite_path(url)
    if path is None:
        return _prepare_server_database(url, fresh=fresh)
    if not path.exists() or path.stat().st_size == 0:
        return Prepared(f"new demo database {path}", owned=True)
    application_id, rows = _sqlite_contents(path)
    if application_id == DEMO_APPLICATION_ID:
        if not fresh:
            return Prepared(f"adding to the demo database {path} (--keep)", owned=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return Prepared(f"removed the previous demo run's database {path}", owned=True)
    if rows is None:
        raise DemoRefused(
            f"{path} is not a waimai-bridge database; the demo leaves it alone"
        ) from None
    if not fresh:
        return Prepared(f"adding to {path} (--keep)", owned=False)
    if any(rows.values()):
        held = ", ".join(f"{count} {table}" for table, count in rows.items() if count)
        raise DemoRefused(
            f"{path} holds data the demo did not write ({held}); the demo only wipes its own "
            "databases. Run it on another file (--database-url sqlite:///demo.db), add to "
            "this one with --keep, or move the file away."
        )
    return Prepared(f"using the empty database {path}", owned=True)


def _sqlite_contents(path: Path) -> tuple[int, dict[str, int] | None]:
    """The file's application id and the rows of each data table (None: not the bridge's)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            application_id = int(db.execute("PRAGMA application_id").fetchone()[0])
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if application_id == DEMO_APPLICATION_ID:
                return application_id, {}
            if tables and "alembic_version" not in tables:
                return application_id, None
            return application_id, {
                table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in DATA_TABLES
                if table in tables
            }
    except sqlite3.DatabaseError as exc:
        raise DemoRefused(
            f"{path} cannot be read as SQLite ({exc}); the demo leaves it alone"
        ) from None


def _prepare_server_database(url: str, *, fresh: bool) -> Prepared:
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
            rows = sum(
                int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in DATA_TABLES
                if table in present
            )
    finally:
        engine.dispose()
    if fresh and rows:
        raise DemoRefused(
            f"{shown} holds data; the demo wipes only SQLite files it created. Give it an "
            "empty database, or add to this one with --keep."
        )
    return Prepared(f"using {shown}", owned=False)


def mark_as_demo(url: str) -> None:
    """Record in a SQLite file that the demo created it, so a later ``--fresh`` may wipe it."""
    path = sqlite_path(url)
    if path is None:
        return
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        db.commit()

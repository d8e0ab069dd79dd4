"""The schema guard (docs/deploy.md): a PostgreSQL database at any revision but this code's
head is refused, checked and never changed, by the guard and by the web app's start-up; an
embedded SQLite one is upgraded instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from tests.test_pipeline import config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import (
    Database,
    SchemaNotCurrent,
    alembic_config,
    head_revision,
)
from waimai_bridge.web.app import create_app


def revisions() -> list[str]:
    """Every revision of the migrations, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def refusal(current: str | None) -> str:
    return (
        f"the database schema is at {current or 'no revision'}, this version needs "
        f"{head_revision()}: run `waimai-bridge migrate`"
    )


def test_every_revision_before_head_is_refused_and_left_as_it_is(
    empty_postgres_url: str,
) -> None:
    database = Database(empty_postgres_url)
    try:
        with pytest.raises(SchemaNotCurrent, match=f"^{re.escape(refusal(None))}$"):
            database.ensure_schema()
        assert database.current_revision() is None
        older = revisions()[:-1]
        assert older, "there is a revision before head"
        for revision in older:
            database.migrate(revision)
            with pytest.raises(SchemaNotCurrent) as refused:
                database.ensure_schema()
            assert str(refused.value) == refusal(revision)
            assert database.current_revision() == revision
        database.migrate()
        database.ensure_schema()  # head: accepted
        assert database.current_revision() == head_revision()
    finally:
        database.dispose()


def test_an_embedded_database_at_any_older_revision_is_upgraded(tmp_path: Path) -> None:
    for revision in revisions()[:-1]:
        database = Database(f"sqlite:///{tmp_path / f'at-{revision}.sqlite3'}")
        try:
            database.migrate(revision)
            database.ensure_schema()
            assert database.current_revision() == head_revision()
        finally:
            database.dispose()


def test_the_web_app_does_not_start_on_an_older_schema(
    empty_postgres_url: str, tmp_path: Path
) -> None:
    previous = revisions()[-2]
    database = Database(empty_postgres_url)
    try:
        database.migrate(previous)
    finally:
        database.dispose()
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(empty_postgres_url))
    plugins = registry()

    bridge = Bridge(load_config(path, plugins), plugins)
    try:
        with pytest.raises(SchemaNotCurrent) as raised, TestClient(create_app(bridge)):
            pass
    finally:
        bridge.stop()
    assert str(raised.value) == refusal(previous)

    migrated = Database(empty_postgres_url)
    try:
        migrated.migrate()
    finally:
        migrated.dispose()
    with TestClient(create_app(Bridge(load_config(path, plugins), plugins))) as client:
        assert client.get("/healthz").status_code == 200

"""The intake's own PostgreSQL connection where mutation testing found it unchecked: one
connection per event loop, opened again after a failure, and the database's errors raised
as SQLAlchemy's (a value it cannot store as :class:`DataError`, which the web answers 400;
a lost connection as :class:`OperationalError`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError

from tests.test_pipeline import config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.models import NativeEvent
from waimai_bridge.pipeline.intake import Intake
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database

T0 = 1_716_181_200_000


@pytest.fixture
def bridge(postgres_database: Database, tmp_path: Path) -> Iterator[Bridge]:
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(postgres_database.url), "utf-8")
    plugins = registry()
    made = Bridge(load_config(path, plugins), plugins)
    yield made
    made.stop()


def event(key: str, **payload: Any) -> NativeEvent:
    return NativeEvent(
        platform="testpay", store_id="S001", platform_order_id="I1", native_code="order.accepted",
        idempotency_key=key, platform_time_ms=T0, payload={"order": "I1", **payload},
    )  # fmt: skip


def backends(database: Database) -> set[int]:
    """The server processes of the other connections to the database."""
    with database.engine.connect() as connection:
        statement = text(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return set(connection.execute(statement).scalars())


def inbox_keys(database: Database) -> set[str]:
    with database.engine.connect() as connection:
        return set(connection.execute(text("SELECT idempotency_key FROM inbox")).scalars())


@pytest.mark.timeout(60)
def test_the_intake_keeps_its_connection_and_opens_another_when_it_must(bridge: Bridge) -> None:
    database = bridge.database
    intake = Intake(bridge.pipeline)
    before = backends(database)

    async def writes() -> set[int]:
        await intake.write([event("K1")], received_at_ms=T0)
        first = backends(database) - before
        await intake.write([event("K2")], received_at_ms=T0)
        assert backends(database) - before == first  # the same connection
        with pytest.raises(DataError):  # the web answers 400: the push cannot be stored
            await intake.write([event("K3", note="\u0000")], received_at_ms=T0)
        await intake.write([event("K4")], received_at_ms=T0)
        assert backends(database) - before == first  # a refused value breaks nothing
        return first

    [own] = asyncio.run(writes())

    async def in_another_loop() -> None:  # as a test client's app gets a loop of its own
        await intake.write([event("K5")], received_at_ms=T0)
        [reopened] = backends(database) - before
        assert reopened != own
        with database.engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": reopened})
        with pytest.raises(OperationalError):
            await intake.write([event("K6")], received_at_ms=T0)
        await intake.write([event("K7")], received_at_ms=T0)  # a connection of its own again
        await intake.close()  # as the app does when it stops ...
        await intake.write([event("K8")], received_at_ms=T0)  # ... and starts again
        await intake.close()

    asyncio.run(in_another_loop())
    assert inbox_keys(database) == {"K1", "K2", "K4", "K5", "K7", "K8"}

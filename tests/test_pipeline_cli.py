"""The pipeline's commands (``orders``, ``inbox``, ``worker``) and its answer when the
database is gone."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, select, text

from tests import testpay
from tests.processes import plugin_site, wait_until
from tests.test_pipeline import SECRET, T0, config_text, registry, send
from waimai_bridge.cli import cli
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import inbox
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import InboxEvent
from waimai_bridge.web.app import create_app


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config of the test platform on a SQLite file, and the plugin installed."""
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'cli.sqlite3'}"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(plugin_site(tmp_path / "site")))
    for variable in ("WAIMAI_CONFIG", "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL"):
        monkeypatch.delenv(variable, raising=False)
    return path


def test_orders_and_parked_events_from_the_command_line(configured: Path) -> None:
    plugins = registry()
    with TestClient(create_app(Bridge(load_config(configured, plugins), plugins))) as client:
        send(client, testpay.push("C:0", "CLI-1", "order.accepted", T0))
        send(client, testpay.push("C:1", "CLI-1", "rider.delivering", T0 + 1000))
        send(client, testpay.push("C:2", "CLI-2", "note.poison", T0 + 2000))
        bridge: Bridge = client.app.state.bridge  # type: ignore[attr-defined]

        def settled() -> bool:
            with bridge.database.transaction() as session:
                return bool(inbox.failed(session)) and bool(
                    session.execute(
                        text("SELECT count(*) FROM orders WHERE state = 'delivering'")
                    ).scalar_one()
                )

        wait_until(settled)

    runner = CliRunner()
    base = ["--config", str(configured)]
    listed = runner.invoke(cli, [*base, "orders", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [order] = json.loads(listed.output)["items"]
    assert (order["platform_order_id"], order["state"]) == ("CLI-1", "delivering")
    table = runner.invoke(cli, [*base, "orders", "list", "--state", "delivering"])
    assert "CLI-1" in table.output
    shown = runner.invoke(cli, [*base, "orders", "show", str(order["id"])])
    assert json.loads(shown.output)["rider_state"] == "delivering"
    missing = runner.invoke(cli, [*base, "orders", "show", "999"])
    assert (missing.exit_code, missing.output.strip()) == (1, "Error: no order 999")

    failed = runner.invoke(cli, [*base, "inbox", "failed"], env={"COLUMNS": "200"})
    assert failed.exit_code == 0
    assert "CLI-2" in failed.output
    assert "ValueError: testpay cannot map this payload" in failed.output
    with TestClient(create_app(Bridge(load_config(configured, plugins), plugins))) as client:
        bridge = client.app.state.bridge  # type: ignore[attr-defined]
        with bridge.database.transaction() as session:
            [row] = inbox.failed(session)
            row_id = row.id
    retried = runner.invoke(
        cli, [*base, "inbox", "retry", str(row_id), "424242", "--reason", "plugin fixed"]
    )
    assert retried.exit_code == 1
    assert "1 inbox events put back; the running serve picks them up" in retried.output
    assert "no failed inbox event with id 424242" in retried.output
    assert "no failed inbox events" in runner.invoke(cli, [*base, "inbox", "failed"]).output


def test_a_worker_needs_a_broker(configured: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(configured), "worker"])
    assert result.exit_code == 1
    assert "the broker is in-process" in result.output


@pytest.mark.parametrize("shards", ["9", "1,x", ","])
def test_worker_shards_are_checked(
    configured: Path, shards: str, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("WAIMAI_BROKER_URL", redis_url)
    result = CliRunner().invoke(cli, ["--config", str(configured), "worker", "--shards", shards])
    assert result.exit_code == 2
    assert "--shards" in result.output


def test_a_taken_metrics_port_is_a_clear_error(
    configured: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("WAIMAI_BROKER_URL", redis_url)
    base = ["--config", str(configured), "worker", "--metrics-port"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, [*base, str(port)])
    assert result.exit_code == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in result.output
    too_high = CliRunner().invoke(cli, [*base, "65535", "--processes", "2"])
    assert too_high.exit_code == 2
    assert "2 processes need ports 65535 to 65536" in too_high.output


def test_pushes_get_503_while_the_database_is_gone(empty_postgres_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(empty_postgres_url, broker=""), encoding="utf-8")
    plugins = registry()
    migrated = Database(empty_postgres_url)
    migrated.migrate()
    migrated.dispose()
    body = testpay.push("DB:0", "DB-1", "order.accepted", T0)
    headers = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
    with TestClient(create_app(Bridge(load_config(path, plugins), plugins))) as client:
        assert client.post("/webhooks/testpay", content=body, headers=headers).status_code == 200
        url = make_url(empty_postgres_url)
        admin = create_engine(url.set(database="test"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:  # the database disappears under the bridge
            connection.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
        admin.dispose()
        again = testpay.push("DB:1", "DB-1", "rider.delivering", T0 + 1000)
        answer = client.post(
            "/webhooks/testpay",
            content=again,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(again, SECRET)},
        )
        assert answer.status_code == 503
        assert answer.json() == {"error": "the push cannot be stored right now; send it again"}
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"].startswith("unreachable")

        with admin.connect() as connection:  # back, empty: pushes are stored again
            connection.execute(text(f'CREATE DATABASE "{url.database}"'))
        admin.dispose()
        migrated = Database(empty_postgres_url)
        migrated.migrate()
        migrated.dispose()
        answer = client.post(
            "/webhooks/testpay",
            content=again,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(again, SECRET)},
        )
        assert answer.status_code == 200
        with Database(empty_postgres_url).transaction() as session:
            assert session.scalars(select(InboxEvent.idempotency_key)).all() == ["DB:1"]

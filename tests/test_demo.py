"""``waimai-bridge demo``: a small lunch service through the embedded stack (SQLite, the
in-process worker, a real uvicorn server and the plugins' fake APIs), checked in the
database it leaves; and the demo's care for databases it did not create."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import func, select

from waimai_bridge.cli import cli
from waimai_bridge.demo.channel import discover
from waimai_bridge.demo.database import DEMO_APPLICATION_ID, prepare_database
from waimai_bridge.demo.stack import to_toml
from waimai_bridge.demo.summary import NOT_STORED, Cell, cells, outcomes, summary_table
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Anomaly, Order, OutboundAction, PlatformOrder, SkuMapping

ORDERS = 24


@dataclass(frozen=True)
class Ran:
    """A finished demo run: its exit code, output and database."""

    exit_code: int
    output: str
    url: str
    path: Path


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    result = CliRunner().invoke(
        cli, ["demo", "--database-url", url, "--orders", str(ORDERS), "--seed", "3"]
    )
    return Ran(result.exit_code, result.output, url, path)


def channels() -> list[str]:
    """The demo channels that have a platform API to approve a refund on."""
    found, problems = discover(sorted(PluginRegistry.discover().platforms))
    assert problems == []
    return [channel.platform for channel in found if channel.fake() is not None]


def test_the_demo_runs_to_its_summary(ran: Ran) -> None:
    assert ran.exit_code == 0, ran.output
    assert "Lunch service by store and channel" in ran.output
    assert f"All {ORDERS} orders ended as expected." in ran.output
    assert "waimai-bridge orders list" in ran.output
    assert "WAIMAI_DATABASE_URL=" in ran.output  # not the default database: say which


def test_every_order_reached_the_database(ran: Ran) -> None:
    database = Database(ran.url)
    with database.transaction() as session:
        seen = session.scalar(select(func.count()).select_from(PlatformOrder))
        stored = session.scalar(select(func.count()).select_from(Order))
        states = set(session.scalars(select(Order.state)))
        mapped = session.scalar(select(func.count()).select_from(SkuMapping))
    database.dispose()
    assert seen == ORDERS
    assert stored is not None
    assert 0 < stored < ORDERS  # some cancelled within the hold
    assert {"completed", "refunded", "partially_refunded"} <= states
    assert mapped


def test_exactly_one_unmapped_sku_anomaly(ran: Ran) -> None:
    database = Database(ran.url)
    with database.transaction() as session:
        kinds = list(session.scalars(select(Anomaly.kind)))
    database.dispose()
    assert kinds == ["unmapped_sku"]
    assert ran.output.count("anomaly ") == 1


def test_the_anomalies_command_lists_the_demo_s_open_anomaly(ran: Ran) -> None:
    listed = CliRunner().invoke(
        cli, ["anomalies", "--open", "--json"], env={"WAIMAI_DATABASE_URL": ran.url}
    )
    assert listed.exit_code == 0, listed.output
    assert [anomaly["rule"] for anomaly in json.loads(listed.output)] == ["unmapped_sku"]


def test_the_settlement_counts_every_stored_order_once_as_the_summary_does(ran: Ran) -> None:
    today = date.today()
    days = [(today + timedelta(days=shift)).isoformat() for shift in (-1, 1)]
    settled = CliRunner().invoke(
        cli, ["settlement", "--from", days[0], "--to", days[1], "--format", "json"],
        env={"WAIMAI_DATABASE_URL": ran.url},
    )  # fmt: skip
    assert settled.exit_code == 0, settled.output
    report = json.loads(settled.stdout)
    database = Database(ran.url)
    with database.transaction() as session:
        stored = session.scalar(select(func.count()).select_from(Order))
        wanted: dict[str, list[str]] = {}
        for platform, order in session.execute(
            select(PlatformOrder.platform, PlatformOrder.platform_order_id)
        ):
            wanted.setdefault(platform, []).append(order)
        summary = cells(session, outcomes(session, wanted))
    database.dispose()
    assert sum(row["orders"] for row in report["rows"]) == report["totals"]["orders"] == stored
    assert report["totals"]["refunded"] > 0
    by_channel: dict[tuple[str, str], Cell] = {}
    for row in report["rows"]:
        cell = by_channel.setdefault((row["store_id"], row["platform"]), Cell())
        cell.user_paid_fen += row["user_paid"]
        cell.refunded_fen += row["refunded"]
        cell.income_fen += row["net_income"]
    shown = {
        key: (cell.user_paid_fen, cell.refunded_fen, cell.income_fen)
        for key, cell in summary.items()
        if cell.received > cell.states[NOT_STORED]
    }
    assert {
        key: (cell.user_paid_fen, cell.refunded_fen, cell.income_fen)
        for key, cell in by_channel.items()
    } == shown


def test_each_refund_approval_is_done_after_one_transient_failure(ran: Ran) -> None:
    database = Database(ran.url)
    with database.transaction() as session:
        actions = [(a.platform, a.action, a.status, a.attempts)
                   for a in session.scalars(select(OutboundAction))]  # fmt: skip
    database.dispose()
    assert sorted(actions) == [(name, "agree_refund", "done", 2) for name in channels()]
    # the fake platforms saw the failed call and exactly one successful one
    assert ran.output.count("done after 2 attempts; the platform saw 2 calls, 1 successful") == (
        len(channels())
    )


def test_the_demo_marks_its_database_and_a_fresh_run_wipes_only_that(ran: Ran) -> None:
    with sqlite3.connect(ran.path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == DEMO_APPLICATION_ID
    copy = ran.path.with_name("copy.db")
    copy.write_bytes(ran.path.read_bytes())
    prepared = prepare_database(f"sqlite:///{copy}", fresh=True)
    assert prepared.owned
    assert not copy.exists()


def test_a_database_with_other_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "waimai-bridge.db"
    database = Database(f"sqlite:///{path}")
    database.ensure_schema()
    with database.transaction() as session:
        session.add(SkuMapping(platform="x", sku_code="A", product_id="P", updated_at_ms=1))
    database.dispose()
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["demo", "--database-url", f"sqlite:///{path}"])
    assert result.exit_code == 1
    assert "holds data the demo did not write (1 sku_mappings)" in result.output
    assert "--keep" in result.output
    assert path.read_bytes() == before


def test_a_file_that_is_not_the_bridges_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text)")
    result = CliRunner().invoke(cli, ["demo", "--database-url", f"sqlite:///{path}", "--keep"])
    assert result.exit_code == 1
    assert "is not a waimai-bridge database" in result.output


def test_the_demo_config_is_written_as_toml() -> None:
    import tomllib

    document = {
        "platforms": {"acme": {"app_id": 7, "secret": 'a"b\\c', "ratio": 0.5, "on": True}},
        "stores": {"S001": {"name": "人民广场店", "acme": {"codes": ["1", "2"]}}},
    }
    assert tomllib.loads(to_toml(document)) == document


def test_an_income_the_platform_did_not_state_is_shown_as_unstated_not_as_zero() -> None:
    stated = {"user_paid": 3790, "merchant_income": 2542}
    cell = Cell(received=3)
    cell.add_money(Order(price=stated, refunded_amount_fen=0))
    cell.add_money(Order(price={**stated, "merchant_income": None}, refunded_amount_fen=500))
    cell.add_money(Order(price=None, refunded_amount_fen=0))

    assert (cell.user_paid_fen, cell.refunded_fen) == (7580, 500)
    assert (cell.income_fen, cell.income_unstated) == (2542, 2)
    console = Console(width=200, record=True)
    console.print(summary_table({("S001", "sample"): cell}, {"S001": "A"}))
    shown = console.export_text()
    assert shown.count("25.42") == 2  # the store's row and the total
    assert shown.count("+2 unstated") == 2

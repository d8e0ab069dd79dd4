"""``waimai-bridge settlement``: the stored orders' money per store × platform × day, as a
table in yuan, or as CSV or JSON in integer fen."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from waimai_bridge.cli.context import BridgeContext, pass_context
from waimai_bridge.store import settlement
from waimai_bridge.store.settlement import COLUMNS, KEY_COLUMNS, MONEY_COLUMNS, Report, Sums

WIDE = 200
"""The table's width when the output is not a terminal."""


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def _day(_ctx: click.Context, param: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day (YYYY-MM-DD)", param=param) from None


@click.command("settlement")
@click.option("--from", "from_day", required=True, callback=_day, help="First day, YYYY-MM-DD.")
@click.option("--to", "to_day", required=True, callback=_day, help="Last day (included).")
@click.option("--store", "store_id", default=None, help="Only this store.")
@click.option("--platform", default=None, help="Only this platform.")
@click.option(
    "--format", "output", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True, help="table: yuan; csv and json: integer fen.",
)  # fmt: skip
@pass_context
def settlement_report(
    bridge: BridgeContext,
    from_day: date,
    to_day: date,
    store_id: str | None,
    platform: str | None,
    output: str,
) -> None:
    """The settlement of stored orders per store × platform × day, the day in each store's
    time zone ([stores.ID] timezone, default Asia/Shanghai)."""
    if from_day > to_day:
        raise click.UsageError(f"--from {from_day} is after --to {to_day}")
    zones = settlement.zones_of(bridge.config.stores)
    database = bridge.database()
    with (
        Progress(
            SpinnerColumn(), TextColumn("reading orders"), TextColumn("{task.completed:,.0f}"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True,
        ) as bar,
        database.transaction() as session,
    ):  # fmt: skip
        task = bar.add_task("read", total=None)
        found = settlement.report(
            session, from_day=from_day, to_day=to_day, zones=zones, store_id=store_id,
            platform=platform, progress=lambda read: bar.update(task, completed=read),
        )  # fmt: skip
    if output == "json":
        click.echo(json.dumps(found.as_json(), indent=2, ensure_ascii=False))
    elif output == "csv":
        _write_csv(found)
    else:
        console = Console(highlight=False)
        if not console.is_terminal:  # piped or captured: room for every column
            console = Console(highlight=False, width=WIDE)
        console.print(_table(found, from_day, to_day))


def _write_csv(found: Report) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow((*KEY_COLUMNS, *COLUMNS))
    for row in found.rows:
        writer.writerow(row.as_json().values())


def _table(found: Report, from_day: date, to_day: date) -> Table:
    table = Table(
        title=f"Settlement {from_day} – {to_day} (¥; net income: after refunds)",
        title_justify="left",
    )
    for column in KEY_COLUMNS:
        table.add_column(column.removesuffix("_id"))
    for column in COLUMNS:
        table.add_column(column.replace("_", "\n"), justify="right", no_wrap=True)
    for row in found.rows:
        table.add_row(row.store_id, row.platform, row.day.isoformat(), *_figures(row.sums))
    table.add_section()
    table.add_row("all", "all", "", *_figures(found.totals), style="bold")
    return table


def _figures(sums: Sums) -> list[str]:
    money = [yuan(getattr(sums, column)) for column in MONEY_COLUMNS]
    return [str(sums.orders), *money, str(sums.mismatches or "")]

"""The ``waimai-bridge`` command line (SPEC §7.2)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from waimai_bridge import __version__
from waimai_bridge.clock import system_clock
from waimai_bridge.config import CONFIG_ENV, Config, load_config
from waimai_bridge.errors import ConfigError
from waimai_bridge.plugins import PluginRegistry, PluginReport, PluginStatus
from waimai_bridge.store.database import Database, SchemaNotCurrent
from waimai_bridge.store.skus import (
    ImportSummary,
    SkuFileError,
    import_skus,
    product_ids,
    read_sku_csv,
)


@dataclass(frozen=True)
class PlannedCommand:
    """A command of the interface that a later issue builds."""

    name: str
    issue: int
    summary: str


PLANNED: Sequence[PlannedCommand] = (
    PlannedCommand("serve", 4, "Run the web receivers and the API (embedded worker in-process)."),
    PlannedCommand("worker", 4, "Run Dramatiq workers on the configured broker."),
    PlannedCommand("orders", 4, "List and show unified orders."),
    PlannedCommand("inbox", 4, "List failed inbox events and retry them."),
    PlannedCommand("actions", 7, "List failed outbound actions and retry them."),
    PlannedCommand("demo", 7, "Replay a day of mixed traffic through the embedded stack."),
    PlannedCommand("contract", 8, "Run the contract harness on a plugin."),
    PlannedCommand("new-plugin", 8, "Scaffold a new platform plugin package."),
)
"""Commands of SPEC §7.2 and the issues that are not built yet, and the issue building each."""


class BridgeContext:
    """What every command shares: the config path, the plugins, and lazily the config and
    the database."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self.registry = PluginRegistry.discover()
        self._config: Config | None = None
        self._database: Database | None = None

    @property
    def config(self) -> Config:
        """The validated configuration; exits with its problems when it is invalid."""
        if self._config is None:
            try:
                self._config = load_config(self.config_path, self.registry)
            except ConfigError as exc:
                click.echo(f"waimai-bridge: {exc}", err=True)
                sys.exit(2)
        return self._config

    def database(self, *, current: bool = True) -> Database:
        """The configured database; with ``current``, its schema checked (SQLite: upgraded)."""
        if self._database is None:
            self._database = Database(self.config.bridge.database_url)
        if current:
            try:
                self._database.ensure_schema()
            except SchemaNotCurrent as exc:
                raise click.ClickException(str(exc)) from None
        return self._database


pass_context = click.make_pass_decorator(BridgeContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar=CONFIG_ENV,
    help=f"TOML config file (also ${CONFIG_ENV}); without one the embedded defaults apply.",
)
@click.version_option(__version__, prog_name="waimai-bridge")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Unify takeaway platforms and the chain's own POS into one order model.

    Commands marked [not built yet] are part of the interface and arrive with the issue named.
    """
    ctx.obj = BridgeContext(config_path)


def _report_row(report: PluginReport, config: Config) -> dict[str, Any]:
    manifest = report.manifest
    return {
        "name": report.name,
        "status": str(report.status),
        "source": report.source,
        "version": manifest.version if manifest else None,
        "contract_version": manifest.contract_version if manifest else None,
        "capabilities": [str(c) for c in manifest.capabilities] if manifest else [],
        "actions": [str(a) for a in manifest.actions] if manifest else [],
        "native_codes": len(manifest.native_codes) if manifest else 0,
        "configured": report.name in config.platforms,
        "stores": sum(1 for store in config.stores.values() if report.name in store.bindings),
        "problem": report.problem,
    }


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def plugins(bridge: BridgeContext, as_json: bool) -> None:
    """List the discovered plugins and their contract status.

    Exits 1 when a plugin was refused.
    """
    rows = [_report_row(report, bridge.config) for report in bridge.registry.reports]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        _print_plugins(rows)
    if any(row["status"] == PluginStatus.REFUSED for row in rows):
        sys.exit(1)


_STATUS_STYLE = {"valid": "green", "refused": "bold red", "blocked": "yellow"}


def _print_plugins(rows: list[dict[str, Any]]) -> None:
    console = Console()
    if not rows:
        console.print("No platform plugins are installed (entry-point group 'waimai_bridge').")
        return
    table = Table(title="waimai-bridge plugins", title_justify="left")
    for column in ("plugin", "version", "contract", "status", "capabilities", "actions", "codes"):
        table.add_column(column)
    table.add_column("config")
    for row in rows:
        status = f"[{_STATUS_STYLE[row['status']]}]{row['status']}[/]"
        configured = f"yes, {row['stores']} stores" if row["configured"] else "no"
        table.add_row(
            row["name"],
            row["version"] or "-",
            row["contract_version"] or "-",
            status,
            ", ".join(row["capabilities"]) or "none yet",
            ", ".join(row["actions"]) or "none",
            str(row["native_codes"]),
            configured,
        )
    console.print(table)
    for row in rows:
        if row["problem"]:
            console.print(f"[bold red]{row['name']}[/]: {row['problem']}", highlight=False)


@cli.command()
@pass_context
def migrate(bridge: BridgeContext) -> None:
    """Upgrade the database schema to this version's (Alembic)."""
    database = bridge.database(current=False)
    before = database.current_revision()
    database.migrate()
    after = database.current_revision()
    where = repr(database).removeprefix("<Database ").removesuffix(">")
    if before == after:
        click.echo(f"{where}: already at {after}")
    else:
        click.echo(f"{where}: upgraded from {before or 'an empty schema'} to {after}")


@cli.group()
def skus() -> None:
    """The SKU mapping: platform item codes → the chain's own product ids."""


@skus.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@pass_context
def skus_import(bridge: BridgeContext, file: str) -> None:
    """Import a CSV with the header platform,sku_code,product_id.

    Every line is checked first; a file with any bad line imports nothing.
    """
    with click.open_file(file, encoding="utf-8") as stream:
        text = stream.read()
    try:
        rows = read_sku_csv(text, platforms=bridge.registry.platforms.keys(), source=file)
    except SkuFileError as exc:
        raise click.ClickException(str(exc)) from None
    database = bridge.database()
    console = Console(stderr=True)
    summary = ImportSummary(0, 0, 0)
    with (
        Progress(console=console, transient=True) as progress,
        database.transaction() as session,
    ):
        task = progress.add_task("importing SKU mappings", total=len(rows))
        for summary in import_skus(session, rows, now_ms=system_clock()):
            progress.update(task, completed=summary.added + summary.changed + summary.unchanged)
    click.echo(
        f"imported {len(rows)} SKU mappings from {file}: {summary.added} added, "
        f"{summary.changed} changed, {summary.unchanged} unchanged"
    )


@skus.command("lookup")
@click.argument("platform")
@click.argument("sku_codes", nargs=-1, required=True)
@pass_context
def skus_lookup(bridge: BridgeContext, platform: str, sku_codes: tuple[str, ...]) -> None:
    """Show the product of each SKU code; exits 1 when one is unmapped."""
    with bridge.database().transaction() as session:
        known = product_ids(session, platform, sku_codes)
    for code in sku_codes:
        click.echo(f"{platform}\t{code}\t{known.get(code, '(unmapped)')}")
    if len(known) < len(set(sku_codes)):
        sys.exit(1)


def _planned_command(planned: PlannedCommand) -> click.Command:
    def run() -> None:
        raise click.ClickException(
            f"'waimai-bridge {planned.name}' is not built yet; "
            f"it arrives with issue #{planned.issue}."
        )

    return click.Command(
        planned.name,
        callback=run,
        help=f"[not built yet: issue #{planned.issue}] {planned.summary}",
        short_help=f"[not built yet: issue #{planned.issue}] {planned.summary}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


for _planned in PLANNED:
    cli.add_command(_planned_command(_planned))


def main() -> None:
    """Entry point of the ``waimai-bridge`` script."""
    cli(prog_name="waimai-bridge")

"""The ``waimai-bridge`` group (SPEC §7.2), its small commands (``plugins``, ``migrate``), and
the entry point that gathers every command group."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from waimai_bridge import __version__
from waimai_bridge.cli.anomalies import anomalies
from waimai_bridge.cli.auth import auth
from waimai_bridge.cli.context import BridgeContext, pass_context
from waimai_bridge.cli.demo import demo
from waimai_bridge.cli.processes import serve, worker
from waimai_bridge.cli.pulls import pull
from waimai_bridge.cli.purge import purge
from waimai_bridge.cli.records import actions, deliveries, inbox, orders
from waimai_bridge.cli.settlement import settlement_report
from waimai_bridge.cli.skus import skus
from waimai_bridge.config import CONFIG_ENV, Config
from waimai_bridge.harness.commands import contract, new_plugin
from waimai_bridge.plugins import PluginReport, PluginStatus


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

    Start with `waimai-bridge demo`; `serve` and `worker` run the bridge.
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


for command in (
    serve,
    worker,
    orders,
    inbox,
    actions,
    deliveries,
    anomalies,
    settlement_report,
    pull,
    purge,
    auth,
    skus,
    demo,
    contract,
    new_plugin,
):
    cli.add_command(command)


def main() -> None:
    """Entry point of the ``waimai-bridge`` script."""
    cli(prog_name="waimai-bridge")

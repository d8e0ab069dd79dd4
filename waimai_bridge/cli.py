"""The ``waimai-bridge`` command line (SPEC §7.2)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from waimai_bridge import __version__
from waimai_bridge.clock import system_clock
from waimai_bridge.config import CONFIG_ENV, Config, load_config
from waimai_bridge.demo.command import demo
from waimai_bridge.errors import ConfigError
from waimai_bridge.harness.commands import contract, new_plugin
from waimai_bridge.models import OrderState
from waimai_bridge.plugins import PluginRegistry, PluginReport, PluginStatus
from waimai_bridge.runtime import Bridge, settle_heap
from waimai_bridge.store import actions as action_store
from waimai_bridge.store import outbox
from waimai_bridge.store.database import Database, SchemaNotCurrent
from waimai_bridge.store.inbox import failed as failed_inbox
from waimai_bridge.store.skus import (
    ImportSummary,
    SkuFileError,
    decode_sku_csv,
    import_skus,
    product_ids,
    read_sku_csv,
)
from waimai_bridge.web.views import MAX_PAGE, find_order, list_orders

WORKER_NICENESS = 2
"""The niceness a worker runs at unless told otherwise: a little below the web processes,
whose answers the platforms wait for (measured in docs/performance.md)."""


class BridgeContext:
    """What every command shares: the config path, the plugins, and lazily the config and
    the database."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self.registry = PluginRegistry.discover()
        self._config: Config | None = None
        self._database: Database | None = None
        self._runtime: Bridge | None = None

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

    def runtime(self) -> Bridge:
        """The running parts: database, broker and pipeline."""
        if self._runtime is None:
            self._runtime = Bridge(self.config, self.registry)
        return self._runtime

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
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--worker/--no-worker",
    default=None,
    help="Work the queue in this process too (default: only with the in-process broker).",
)
@click.option("--log-level", default="info", show_default=True)
@pass_context
def serve(bridge: BridgeContext, host: str, port: int, worker: bool | None, log_level: str) -> None:
    """Run the web receivers and the API.

    With the in-process broker (the embedded default) this process also runs the worker
    and creates or upgrades its SQLite schema.
    """
    import uvicorn

    from waimai_bridge.web.app import create_app

    _configure_logging(log_level)
    app = create_app(bridge.runtime(), run_worker=worker)
    settle_heap()
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


@cli.command()
@click.option(
    "--shards",
    "shard_list",
    default=None,
    help="Comma-separated shard numbers to consume (default: all).",
)
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--metrics-port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Serve the workers' Prometheus metrics at http://HOST:PORT/metrics (with "
    "--processes N, one port per process: PORT to PORT+N-1). Default: not served.",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address of --metrics-port."
)
@click.option(
    "--nice",
    "niceness",
    default=WORKER_NICENESS,
    show_default=True,
    type=click.IntRange(0, 19),
    help="Run at this niceness (0 the normal CPU priority, 19 the lowest), so that web "
    "processes on the same machine get the CPU first; the workers then catch up in larger "
    "batches. A worker started at a lower priority keeps it. Niceness ranks processes of "
    "one scheduling group only (one cgroup or session; docs/deploy.md).",
)
@click.option("--log-level", default="info", show_default=True)
@pass_context
def worker(
    bridge: BridgeContext,
    shard_list: str | None,
    processes: int,
    threads: int,
    metrics_port: int | None,
    metrics_host: str,
    niceness: int,
    log_level: str,
) -> None:
    """Run Dramatiq workers on the configured broker (all shard queues or --shards)."""
    settings = bridge.config.bridge
    if not settings.broker_url:
        raise click.ClickException(
            'the broker is in-process (broker_url = ""): `waimai-bridge serve` works the queue '
            "itself; set [bridge].broker_url or WAIMAI_BROKER_URL to run separate workers"
        )
    shards = _parse_shards(shard_list, settings.shards)
    _configure_logging(log_level)
    if metrics_port is not None and metrics_port + processes - 1 > 65535:
        raise click.BadParameter(
            f"{processes} processes need ports {metrics_port} to {metrics_port + processes - 1}",
            param_hint="--metrics-port",
        )
    _lower_priority(niceness)  # before any thread or child starts: they inherit it
    if processes > 1:
        metrics = None if metrics_port is None else (metrics_host, metrics_port)
        sys.exit(
            _supervise(
                bridge.config_path, shard_list, processes, threads, niceness, log_level, metrics
            )
        )
    if metrics_port is not None:
        _serve_metrics(metrics_host, metrics_port)
    runtime = bridge.runtime()
    runtime.database.ensure_schema()
    runtime.start_worker(shards=shards, threads=threads)
    settle_heap()
    shown = ", ".join(str(shard) for shard in sorted(shards)) if shards else "all"
    click.echo(
        f"worker consuming shards {shown} of {settings.shards} with {threads} threads", err=True
    )
    _wait_for_signal()
    runtime.stop()


def _parse_shards(shard_list: str | None, count: int) -> set[int] | None:
    if shard_list is None:
        return None
    try:
        shards = {int(part) for part in shard_list.split(",") if part.strip()}
    except ValueError:
        raise click.BadParameter(
            "must be shard numbers separated by commas, e.g. 0,3", param_hint="--shards"
        ) from None
    wrong = sorted(shard for shard in shards if not 0 <= shard < count)
    if wrong or not shards:
        raise click.BadParameter(
            f"shards are numbered 0 to {count - 1}; got {shard_list!r}", param_hint="--shards"
        )
    return shards


def _lower_priority(niceness: int) -> None:
    """Run this process (its main thread, and so every thread and child it starts after)
    at ``niceness``, unless it already runs at a lower priority."""
    if not hasattr(os, "setpriority"):  # not a POSIX system: priorities are left alone
        return
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


def _serve_metrics(host: str, port: int) -> None:
    """Serve this process's Prometheus metrics at ``http://host:port/metrics``."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _wait_for_signal() -> None:
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    stop.wait()


def _supervise(
    config_path: str | None,
    shard_list: str | None,
    processes: int,
    threads: int,
    niceness: int,
    level: str,
    metrics: tuple[str, int] | None,
) -> int:
    """Run ``processes`` single-process workers and stop them together (``metrics``: the
    host and first port of their metrics, one port each)."""
    command = [sys.executable, "-m", "waimai_bridge"]
    if config_path:
        command += ["--config", config_path]
    command += ["worker", "--processes", "1", "--threads", str(threads), "--nice", str(niceness)]
    command += ["--log-level", level]
    if shard_list:
        command += ["--shards", shard_list]
    children = [
        subprocess.Popen(
            command
            if metrics is None
            else [*command, "--metrics-host", metrics[0], "--metrics-port", str(metrics[1] + index)]
        )
        for index in range(processes)
    ]

    def forward(number: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(number)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, forward)
    return max(child.wait() for child in children)


@cli.group()
def orders() -> None:
    """List and show unified orders."""


@orders.command("list")
@click.option("--store-id", default=None)
@click.option("--platform", default=None)
@click.option("--state", type=click.Choice([state.value for state in OrderState]), default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def orders_list(
    bridge: BridgeContext,
    store_id: str | None,
    platform: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The most recent orders matching the filters."""
    with bridge.database().transaction() as session:
        page = list_orders(
            session,
            store_id=store_id,
            platform=platform,
            state=None if state is None else OrderState(state),
            limit=limit,
        )
    if as_json:
        click.echo(page.model_dump_json(indent=2))
        return
    table = Table(title=f"{len(page.items)} orders", title_justify="left")
    for column in (
        "id",
        "platform",
        "platform order",
        "store",
        "state",
        "rider",
        "paid",
        "updated",
    ):
        table.add_column(column)
    for item in page.items:
        table.add_row(
            str(item.id),
            item.platform,
            item.platform_order_id,
            item.store_id,
            item.state,
            item.rider_state or "-",
            f"{item.price.user_paid / 100:.2f}" if item.price else "-",
            item.updated_at,
        )
    Console().print(table)


@orders.command("show")
@click.argument("order_id", type=int)
@pass_context
def orders_show(bridge: BridgeContext, order_id: int) -> None:
    """One order with its items, price, anomalies and events, as JSON."""
    with bridge.database().transaction() as session:
        found = find_order(session, order_id)
    if found is None:
        raise click.ClickException(f"no order {order_id}")
    click.echo(found.model_dump_json(indent=2))


@cli.group()
def inbox() -> None:
    """Inbox events a plugin could not read (parked, never dropped), and retrying them."""


@inbox.command("failed")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@pass_context
def inbox_failed(bridge: BridgeContext, limit: int) -> None:
    """List the parked events with their errors."""
    with bridge.database().transaction() as session:
        rows = failed_inbox(session, limit=limit)
        shown = [
            (str(row.id), row.platform, row.platform_order_id, row.native_code,
             str(row.attempts), row.error or "")
            for row in rows
        ]  # fmt: skip
    if not shown:
        click.echo("no failed inbox events")
        return
    _print_table(
        f"{len(shown)} failed inbox events",
        ("id", "platform", "platform order", "code", "attempts", "error"),
        shown,
    )


@inbox.command("retry")
@click.argument("row_ids", nargs=-1, type=int, required=True)
@pass_context
def inbox_retry(bridge: BridgeContext, row_ids: tuple[int, ...]) -> None:
    """Put parked events back in line (e.g. after fixing the plugin or its config)."""
    runtime = bridge.runtime()
    missing = [
        row_id
        for row_id in row_ids
        if not runtime.pipeline.retry(row_id, send=not runtime.embedded)
    ]
    queued = len(row_ids) - len(missing)
    where = "queued" if not runtime.embedded else "put back; the running serve picks them up"
    click.echo(f"{queued} inbox events {where}")
    if missing:
        raise click.ClickException(f"no failed inbox event with id {', '.join(map(str, missing))}")


@cli.group()
def actions() -> None:
    """Outbound actions on the platforms: list them, retry the failed ones."""


@actions.command("list")
@click.option("--failed", is_flag=True, help="Only the failed ones.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@pass_context
def actions_list(bridge: BridgeContext, failed: bool, limit: int) -> None:
    """List actions, newest first, with the platform's last answer."""
    status = action_store.ActionStatus.FAILED if failed else None
    with bridge.database().transaction() as session:
        shown = [
            (str(row.id), row.action, row.platform, row.platform_order_id, row.status,
             str(row.attempts), " ".join(filter(None, (row.result_code, row.result_message))))
            for row in action_store.listing(session, status=status, limit=limit)
        ]  # fmt: skip
    if not shown:
        click.echo("no failed actions" if failed else "no actions")
        return
    _print_table(
        f"{len(shown)} {'failed ' if failed else ''}actions",
        ("id", "action", "platform", "platform order", "status", "calls", "result"),
        shown,
    )


@actions.command("retry")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@pass_context
def actions_retry(bridge: BridgeContext, action_ids: tuple[int, ...]) -> None:
    """Give failed actions another round of tries (after checking on the platform)."""
    runtime = bridge.runtime()
    bridge.database()
    missing = [action_id for action_id in action_ids if runtime.actions.retry(action_id) is None]
    retried = len(action_ids) - len(missing)
    where = "queued" if not runtime.embedded else "put back; the running serve picks them up"
    click.echo(f"{retried} actions {where}")
    if missing:
        raise click.ClickException(f"no failed action with id {', '.join(map(str, missing))}")


@cli.group()
def deliveries() -> None:
    """Updates for subscribers: the ones given up on."""


@deliveries.command("dead")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@pass_context
def deliveries_dead(bridge: BridgeContext, limit: int) -> None:
    """List the updates no subscriber took within the give-up time."""
    with bridge.database().transaction() as session:
        shown = [
            (str(row.id), str(row.subscription_id), row.kind, str(row.order_id or ""),
             str(row.attempts), row.last_error or "")
            for row in outbox.dead(session, limit=limit)
        ]  # fmt: skip
    if not shown:
        click.echo("no dead deliveries")
        return
    _print_table(
        f"{len(shown)} dead deliveries",
        ("id", "subscription", "kind", "order", "attempts", "last error"),
        shown,
    )


def _print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


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
    with click.open_file(file, "rb") as stream:
        data = stream.read()
    try:
        text = decode_sku_csv(data, source=file)
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


cli.add_command(demo)
cli.add_command(contract)
cli.add_command(new_plugin)


def main() -> None:
    """Entry point of the ``waimai-bridge`` script."""
    cli(prog_name="waimai-bridge")

"""``waimai-bridge purge``: the retention purge by hand, or what it would remove."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from waimai_bridge.cli.context import BridgeContext, pass_context
from waimai_bridge.clock import system_clock
from waimai_bridge.settings import RetentionSettings
from waimai_bridge.store import retention
from waimai_bridge.store.database import Database
from waimai_bridge.store.retention import Cutoffs, Purged

_WHAT = {
    "inbox": ("processed inbox rows", "done before", "deleted", "inbox_days"),
    "deliveries": ("delivered subscriber updates", "delivered before", "deleted",
                   "deliveries_days"),
    "payloads": ("event payloads", "received before", "emptied", "payloads_days"),
    "changes": ("changes the board follows", "noted before", "deleted", "changes_days"),
}  # fmt: skip
"""Per kind: its rows, their age, what the purge does to them, and its setting."""


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@pass_context
def purge(bridge: BridgeContext, dry_run: bool) -> None:
    """Purge the work done longer ago than the [retention] ages, as a worker does every
    interval_minutes: processed inbox rows, delivered subscriber updates, the raw payloads
    of logged events (emptied; the events and the orders stay), and the feed of changes the
    order board follows.

    Prints per kind how many rows it deleted (with --dry-run: would delete) and the
    cutoff.
    """
    settings = bridge.config.retention
    database = bridge.database()
    cutoffs = Cutoffs.of(settings, system_clock())
    done = _purge_showing_progress(database, cutoffs, settings, dry_run=dry_run)
    counts = dict(done)
    for kind, cutoff_ms in cutoffs:
        rows, age, verb, setting = _WHAT[kind]
        if cutoff_ms is None:
            click.echo(f"{kind}: {rows} kept for ever ({setting} = 0)")
            continue
        action = f"would be {verb}" if dry_run else verb
        click.echo(f"{kind}: {counts[kind]} {rows} {age} {_when(cutoff_ms)} {action}")


def _purge_showing_progress(
    database: Database, cutoffs: Cutoffs, settings: RetentionSettings, *, dry_run: bool
) -> Purged:
    """Count what goes, then (unless ``dry_run``) purge it, a bar per kind on stderr."""
    columns = (
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()
    )  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        counting = progress.add_task("counting", total=None)
        expected = retention.purge(database, cutoffs, batch_size=settings.batch_size, dry_run=True)
        progress.remove_task(counting)
        if dry_run:
            return expected
        tasks = {
            kind: progress.add_task(f"purging {kind}", total=count)
            for kind, count in expected
            if dict(cutoffs)[kind] is not None
        }
        return retention.purge(
            database, cutoffs, batch_size=settings.batch_size,
            progress=lambda kind, rows: progress.advance(tasks[kind], rows),
        )  # fmt: skip


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")

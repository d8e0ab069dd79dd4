"""``waimai-bridge pull``: pulling what the platforms failed to push, by hand."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from waimai_bridge.cli.context import BridgeContext, pass_context
from waimai_bridge.clock import moment_ms
from waimai_bridge.errors import failure_site
from waimai_bridge.models import Capability


@click.command()
@click.option("--platform", "platforms", multiple=True, help="Only this platform (repeatable).")
@click.option("--store", "stores", multiple=True, help="Only this store (repeatable).")
@click.option(
    "--since",
    help="Pull from this moment (epoch ms or ISO 8601 with its zone) instead of each "
    "store's last pull.",
)
@pass_context
def pull(
    bridge: BridgeContext, platforms: tuple[str, ...], stores: tuple[str, ...], since: str | None
) -> None:
    """Pull the messages the platforms failed to push into the inbox, store by store.

    Does what the workers do every pull_interval_seconds, for the platforms whose plugin
    can (pull_events); the workers apply what it brings. Exits 1 when a pull failed.
    """
    try:
        since_ms = None if since is None else moment_ms(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    bridge.database()  # the schema checked (SQLite: upgraded) before anything is written
    puller = bridge.runtime().puller
    able = puller.platforms(Capability.PULL_EVENTS)
    unknown = [name for name in platforms if name not in able]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}: not a configured platform that can pull "
            f"(those that can: {', '.join(able) or 'none'})",
            param_hint="--platform",
        )
    targets = [
        (platform, store)
        for platform in platforms or able
        for store in puller.stores(platform)
        if not stores or store in stores
    ]
    if not targets:
        raise click.ClickException("no configured store of a platform that can pull matches")
    failed, pulled, new = [], 0, 0
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("pulling", total=len(targets))
        for platform, store in targets:
            progress.update(task, description=f"pulling {platform} {store}")
            try:
                done = puller.pull_store(platform, store, since_ms=since_ms)
            except Exception as exc:  # one store's failure is reported, the others pulled
                failed.append(f"{platform} {store}: {failure_site(exc)}")
            else:
                pulled, new = pulled + done.pulled, new + done.new
            progress.advance(task)
    click.echo(f"pulled {pulled} events from {len(targets) - len(failed)} stores, {new} new")
    for line in failed:
        click.echo(f"failed: {line}", err=True)
    if failed:
        sys.exit(1)

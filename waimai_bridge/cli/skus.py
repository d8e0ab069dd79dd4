"""``waimai-bridge skus``: importing and looking up the SKU mapping (SPEC §6)."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import Progress

from waimai_bridge.cli.context import BridgeContext, pass_context
from waimai_bridge.clock import system_clock
from waimai_bridge.store.skus import (
    ImportSummary,
    SkuFileError,
    decode_sku_csv,
    import_skus,
    product_ids,
    read_sku_csv,
)


@click.group()
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

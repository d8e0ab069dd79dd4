"""``waimai-bridge anomalies``: the orders a person should look at, by rule."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from waimai_bridge.cli.context import BridgeContext, pass_context, print_table
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import anomalies as anomaly_store
from waimai_bridge.web.views import iso


@click.command()
@click.option("--open", "open_only", is_flag=True, help="Only the open ones.")
@click.option("--store-id", default=None, help="Only this store's.")
@click.option("--platform", default=None, help="Only this platform's.")
@click.option("--rule", type=click.Choice([rule.value for rule in AnomalyRule]), default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def anomalies(
    bridge: BridgeContext,
    open_only: bool,
    store_id: str | None,
    platform: str | None,
    rule: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List anomalies, newest first: open ones and (without --open) resolved ones."""
    with bridge.database().transaction() as session:
        found = anomaly_store.listing(
            session, is_open=True if open_only else None, store_id=store_id,
            platform=platform, rule=rule, limit=limit,
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps([asdict(anomaly) for anomaly in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no open anomalies" if open_only else "no anomalies")
        return
    rows = [
        (str(a.anomaly_id), a.rule, a.store_id,
         f"{a.platform} {a.platform_order_id or '(channel)'}",
         str(a.order_id or ""), iso(a.opened_at_ms)[:19],
         "open" if a.resolved_at_ms is None else iso(a.resolved_at_ms)[:19], a.detail)
        for a in found
    ]  # fmt: skip
    print_table(
        f"{len(rows)} {'open ' if open_only else ''}anomalies (times UTC)",
        ("id", "rule", "store", "platform order", "order", "opened", "resolved", "detail"),
        rows,
    )

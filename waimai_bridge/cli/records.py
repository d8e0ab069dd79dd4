"""Reading what the bridge holds, and settling its dead letters: ``orders``, ``inbox``,
``actions``, ``deliveries``."""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table

from waimai_bridge.cli.context import BridgeContext, pass_context, print_table
from waimai_bridge.models import OrderState
from waimai_bridge.pipeline.dead_letters import (
    REASON_LENGTH,
    BadReason,
    DeadLetters,
    checked_reason,
)
from waimai_bridge.store import actions as action_store
from waimai_bridge.store import outbox
from waimai_bridge.store.inbox import failed as failed_inbox
from waimai_bridge.web.views import MAX_PAGE, find_order, list_orders


@click.group()
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
    page = bridge.database().read(
        lambda connection: list_orders(
            connection,
            store_id=store_id,
            platform=platform,
            state=None if state is None else OrderState(state),
            limit=limit,
        )
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
    found = bridge.database().read(lambda connection: find_order(connection, order_id))
    if found is None:
        raise click.ClickException(f"no order {order_id}")
    click.echo(found.model_dump_json(indent=2))


def _checked_reason(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return checked_reason(value)
    except BadReason as exc:
        raise click.BadParameter(str(exc)) from None


REASON = click.option(
    "--reason",
    required=True,
    callback=_checked_reason,
    help=f"Why, logged with who asked (one line, at most {REASON_LENGTH} characters).",
)


def operator() -> str:
    """Who runs a command, as dead-letter operations record it: ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name and no passwd entry
        return f"cli:uid-{os.getuid()}"


def _dead_letters(bridge: BridgeContext) -> DeadLetters:
    """The dead letters of the configured bridge; a retry is sent when this process shares
    the workers' broker."""
    bridge.database()
    runtime = bridge.runtime()
    send = not runtime.embedded
    return DeadLetters(runtime.pipeline, runtime.applier, runtime.actions, send=send)


def _put_back(letters: DeadLetters) -> str:
    return "queued" if letters.send else "put back; the running serve picks them up"


def _settled(
    ids: Sequence[int], missing: Sequence[int], *, done: str, plural: str, missing_what: str
) -> None:
    """Say how many of ``ids`` were settled; fail naming the ``missing`` ones."""
    click.echo(f"{len(ids) - len(missing)} {plural} {done}")
    if missing:
        raise click.ClickException(f"no {missing_what} with id {', '.join(map(str, missing))}")


@click.group()
def inbox() -> None:
    """Inbox events a plugin could not read (parked, never dropped): retrying or discarding
    them."""


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
    print_table(
        f"{len(shown)} failed inbox events",
        ("id", "platform", "platform order", "code", "attempts", "error"),
        shown,
    )


@inbox.command("retry")
@click.argument("row_ids", nargs=-1, type=int, required=True)
@REASON
@pass_context
def inbox_retry(bridge: BridgeContext, row_ids: tuple[int, ...], reason: str) -> None:
    """Put parked events back in line (e.g. after fixing the plugin or its config)."""
    letters = _dead_letters(bridge)
    who = operator()
    missing = [
        row_id for row_id in row_ids
        if letters.retry_event(row_id, who=who, reason=reason) is None
    ]  # fmt: skip
    _settled(row_ids, missing, done=_put_back(letters), plural="inbox events",
             missing_what="failed inbox event")  # fmt: skip


@inbox.command("discard")
@click.argument("row_ids", nargs=-1, type=int, required=True)
@REASON
@pass_context
def inbox_discard(bridge: BridgeContext, row_ids: tuple[int, ...], reason: str) -> None:
    """Give up on parked events for good (never applied; kept with who and why)."""
    letters = _dead_letters(bridge)
    who = operator()
    missing = [
        row_id for row_id in row_ids
        if letters.discard_event(row_id, who=who, reason=reason) is None
    ]  # fmt: skip
    _settled(row_ids, missing, done="discarded", plural="inbox events",
             missing_what="failed inbox event")  # fmt: skip


@click.group()
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
    print_table(
        f"{len(shown)} {'failed ' if failed else ''}actions",
        ("id", "action", "platform", "platform order", "status", "calls", "result"),
        shown,
    )


@actions.command("retry")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@REASON
@pass_context
def actions_retry(bridge: BridgeContext, action_ids: tuple[int, ...], reason: str) -> None:
    """Give failed actions another round of tries (after checking on the platform)."""
    letters = _dead_letters(bridge)
    who = operator()
    missing = [
        action_id for action_id in action_ids
        if letters.retry_action(action_id, who=who, reason=reason) is None
    ]  # fmt: skip
    _settled(action_ids, missing, done=_put_back(letters), plural="actions",
             missing_what="failed action")  # fmt: skip


@click.group()
def deliveries() -> None:
    """Updates for subscribers: the ones given up on, and another round for them."""


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
    print_table(
        f"{len(shown)} dead deliveries",
        ("id", "subscription", "kind", "order", "attempts", "last error"),
        shown,
    )


@deliveries.command("retry")
@click.argument("delivery_ids", nargs=-1, type=int, required=True)
@REASON
@pass_context
def deliveries_retry(bridge: BridgeContext, delivery_ids: tuple[int, ...], reason: str) -> None:
    """Make dead updates due now, each given the give-up time afresh (after fixing the
    subscriber)."""
    letters = _dead_letters(bridge)
    who = operator()
    missing = [
        delivery_id for delivery_id in delivery_ids
        if letters.retry_delivery(delivery_id, who=who, reason=reason) is None
    ]  # fmt: skip
    _settled(delivery_ids, missing, done=_put_back(letters), plural="deliveries",
             missing_what="dead delivery")  # fmt: skip

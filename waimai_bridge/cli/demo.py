"""``waimai-bridge demo``: a lunch service through the embedded stack, and its summary."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from waimai_bridge.clock import system_clock
from waimai_bridge.demo import channel as channels
from waimai_bridge.demo.channel import DemoChannel, DemoFake, DemoOrder
from waimai_bridge.demo.database import DemoRefused, mark_as_demo, prepare_database
from waimai_bridge.demo.replay import ActionRun, Drops, Play, Replay, recovered, settle
from waimai_bridge.demo.schedule import Phase, Timeline, lunch_start_ms, schedule
from waimai_bridge.demo.summary import Outcome, cells, outcomes, summary_table
from waimai_bridge.errors import ConfigError
from waimai_bridge.models import Capability
from waimai_bridge.runtime import Bridge
from waimai_bridge.settings import BridgeSettings
from waimai_bridge.store.database import SchemaNotCurrent
from waimai_bridge.store.skus import SkuRow, import_skus

if TYPE_CHECKING:
    from waimai_bridge.cli.context import BridgeContext

STORES: Sequence[tuple[str, str]] = (
    ("S001", "人民广场店"),
    ("S002", "徐家汇店"),
    ("S003", "陆家嘴店"),
)
"""The demo chain's stores: id and name."""

RECOVERY_TIMEOUT_S = 60.0
"""How long a run whose platforms failed to push waits for the bridge to pull the rest."""

HOLD_SECONDS = 2
"""The demo's accept hold: long enough to show, short enough for a one-minute demo."""

WIDE = 132
"""The output's width when it is not a terminal."""

DEFAULT_ORDERS = 108
DEFAULT_SEED = 11
DEFAULT_DATABASE_URL = BridgeSettings.model_fields["database_url"].default


@click.command()
@click.option(
    "--database-url",
    envvar="WAIMAI_DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help="Where the orders go (also $WAIMAI_DATABASE_URL); `orders list` reads the same.",
)
@click.option(
    "--orders",
    "order_count",
    default=DEFAULT_ORDERS,
    show_default=True,
    type=click.IntRange(1, 5_000),
    help="Orders in the lunch service, spread over the stores and channels.",
)
@click.option("--seed", default=DEFAULT_SEED, show_default=True, help="Seed of the service.")
@click.option(
    "--fresh/--keep",
    default=True,
    show_default=True,
    help="Start from an empty database (only a database the demo created is wiped), or "
    "add to the existing one.",
)
@click.option(
    "--drop-pushes",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 0.5),
    help="The share of pushes the platforms fail to send; the bridge pulls and fetches them.",
)
@click.option(
    "--board",
    is_flag=True,
    help="After the replay, keep the stack running and print the order board's URL and the "
    "API token to log in with, until Ctrl-C.",
)
@click.pass_obj
def demo(
    bridge: BridgeContext, database_url: str, order_count: int, seed: int, fresh: bool,
    drop_pushes: float, board: bool,
) -> None:  # fmt: skip
    """Replay a lunch service through the embedded stack and print the unified result.

    Starts the web app with its in-process worker on a free local port, the installed
    platforms' fake APIs, and sends every channel's signed pushes over real HTTP: orders
    cancelled within the accept hold, riders, partial and full refunds, an unmapped SKU and
    a refund approved through the API that the platform first answers with an error. It
    builds its own configuration (--config and WAIMAI_* settings other than the database
    URL do not apply). Exits 1 when an order did not end where its story says.
    """
    console = Console(highlight=False)
    if not console.is_terminal:  # piped or captured: room for the summary table
        console = Console(highlight=False, width=WIDE)
    found, problems = channels.discover(sorted(bridge.registry.platforms))
    for problem in problems:
        console.print(f"[yellow]skipping demo channel[/] {problem}")
    if not found:
        raise click.ClickException(
            "no installed plugin offers a demo channel "
            f"(entry-point group {channels.ENTRY_POINT_GROUP!r})"
        )
    try:
        prepared = prepare_database(database_url, fresh=fresh)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    console.print(
        f"[bold]waimai-bridge demo[/]: a lunch service of {order_count} orders at "
        f"{len(STORES)} stores over {', '.join(c.platform for c in found)}; {prepared.note}"
    )
    run = int(time.time())
    plays = _lunch(found, order_count, seed, run)
    ok = _run(
        console, bridge, found, plays, database_url, prepared.owned, seed, run, drop_pushes,
        board=board,
    )  # fmt: skip
    if not ok:
        raise SystemExit(1)


def _lunch(found: Sequence[DemoChannel], total: int, seed: int, run: int) -> list[Play]:
    """Every channel's orders, ``total`` spread evenly over channels × stores."""
    cells = [(chan, number) for chan in found for number in range(1, len(STORES) + 1)]
    base, extra = divmod(total, len(cells))
    plays: list[Play] = []
    for index, (chan, number) in enumerate(cells):
        store_id = STORES[number - 1][0]
        count = base + (1 if index < extra else 0)
        rng = random.Random(f"{seed}:{chan.platform}:{store_id}")
        written = chan.lunch(
            store_id, number, count, rng, run=run,
            refund_approval=number == 1, unmapped_sku=(chan is found[0] and number == 2),
        )  # fmt: skip
        for raw in written:
            try:
                order = raw if isinstance(raw, DemoOrder) else DemoOrder.model_validate(raw)
            except ValidationError as exc:
                raise click.ClickException(
                    f"the {chan.platform} demo channel wrote a bad order: {exc}"
                ) from None
            plain = raw.model_dump(mode="json") if isinstance(raw, DemoOrder) else raw
            plays.append(Play(chan, plain, order))
    seen = _repeated_ids(plays)
    if seen:
        raise click.ClickException(f"demo channels repeat order ids: {', '.join(seen[:5])}")
    return plays


def _repeated_ids(plays: Sequence[Play]) -> list[str]:
    """Order ids that occur twice on one platform."""
    known: set[tuple[str, str]] = set()
    twice = []
    for play in plays:
        key = (play.channel.platform, play.order.platform_order_id)
        if key in known:
            twice.append(" ".join(key))
        known.add(key)
    return twice


def _run(
    console: Console,
    context: BridgeContext,
    found: Sequence[DemoChannel],
    plays: Sequence[Play],
    database_url: str,
    owned: bool,
    seed: int,
    run: int,
    drop_pushes: float,
    *,
    board: bool = False,
) -> bool:
    from waimai_bridge.demo.stack import API_TOKEN, build_config, listening_socket, serving

    registry = context.registry
    timeline = Timeline.for_orders(len(plays), hold_ms=HOLD_SECONDS * 1000)
    sends = schedule([play.order for play in plays], timeline, random.Random(seed))
    acting = [play for play in plays if play.order.action is not None]
    span_ms = (sends[-1].at_ms if sends else 0) + 10_000
    lunch_start = lunch_start_ms(dt.datetime.now().astimezone(), span_ms)
    with contextlib.ExitStack() as stack:
        fakes: dict[str, DemoFake] = {}
        for chan in found:
            manager = chan.fake()
            if manager is not None:
                fakes[chan.platform] = stack.enter_context(manager)
        sock = stack.enter_context(listening_socket())
        base_url = "http://{}:{}".format(*sock.getsockname()[:2])
        try:
            config = build_config(
                registry,
                database_url=database_url,
                public_base_url=base_url,
                hold_seconds=HOLD_SECONDS,
                platforms={
                    c.platform: c.settings(
                        fakes[c.platform].api_base if c.platform in fakes else None
                    )
                    for c in found
                },
                stores={
                    store_id: {"name": name, **{c.platform: c.binding(store_id, n) for c in found}}
                    for n, (store_id, name) in enumerate(STORES, start=1)
                },
                recovering=drop_pushes > 0,
            )
        except ConfigError as exc:
            raise click.ClickException(f"the demo channels' config is not valid: {exc}") from None
        runtime = Bridge(config, registry)
        try:
            runtime.database.ensure_schema()
        except SchemaNotCurrent as exc:
            raise click.ClickException(str(exc)) from None
        if owned:
            mark_as_demo(database_url)
        with runtime.database.transaction() as session:
            rows = [SkuRow(c.platform, code, product) for c in found for code, product in c.skus()]
            for _ in import_skus(session, rows, now_ms=system_clock()):
                pass
        stack.enter_context(serving(runtime, sock))
        client = stack.enter_context(
            httpx.Client(
                base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {API_TOKEN}"}
            )
        )
        drops = None
        if drop_pushes > 0:
            pulling = frozenset(
                c.platform
                for c in found
                if registry.platform(c.platform).supports(Capability.PULL_EVENTS)
            )
            drops = Drops(drop_pushes, random.Random(f"{seed}:drops"), fakes, pulling)
        replay = Replay(client, base_url, lunch_start, drops)
        with Progress(
            TextColumn("[bold blue]{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(Phase.PLACING.value, total=len(sends) + len(acting))

            def tick(phase: Phase) -> None:
                progress.update(task, advance=1, description=phase.value)

            replay.play(sends, plays, tick)
            progress.update(task, description=Phase.ACTIONS.value)
            actions = replay.act(acting, fakes, run, tick)
            if drops is not None:
                progress.update(task, description="pulling what was not pushed")
                recovered(runtime.database, plays, timeout_s=RECOVERY_TIMEOUT_S)
            progress.update(task, description="pipeline settling")
            wanted: dict[str, list[str]] = {}
            for play in plays:
                wanted.setdefault(play.channel.platform, []).append(play.order.platform_order_id)
            settled = settle(runtime.database, wanted)
            progress.update(task, description="done")
        with runtime.database.transaction() as session:
            results = outcomes(session, wanted)
            table = cells(session, results)
        elapsed = time.monotonic() - replay.started
        console.print(summary_table(table, dict(STORES)))
        ok = _report(console, plays, results, actions, replay, settled, elapsed, database_url)
        if board:
            waiting = _lunch(found, len(found) * len(STORES), seed + 1, run + 1)
            for play in waiting:  # only placed: each waits on the board to be accepted
                replay.push(play, play.order.placing[0], replay.elapsed_ms())
            console.print(f"{len(waiting)} new orders wait on the board to be accepted.")
            _keep_serving(console, base_url, API_TOKEN)
    return ok


def _keep_serving(console: Console, base_url: str, token: str) -> None:
    """Say where the order board is and how to log in, then wait for Ctrl-C."""
    console.print(f"\nThe order board: {base_url}/board", markup=False)
    console.print(f"Log in with the demo's API token: {token}", markup=False)
    console.print("The stack keeps running until Ctrl-C.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping the demo's stack")


def _report(
    console: Console,
    plays: Sequence[Play],
    results: Sequence[Outcome],
    actions: Sequence[ActionRun],
    replay: Replay,
    settled: bool,
    elapsed: float,
    database_url: str,
) -> bool:
    """Print what happened beyond the table; True when everything went as the stories say."""
    by_id = {(r.platform, r.platform_order_id): r for r in results}
    held_out = sum(1 for play in plays if play.order.expected_state is None)
    console.print(
        f"{replay.sent} signed pushes over HTTP in {elapsed:.1f} s; the {HOLD_SECONDS} s accept "
        f"hold kept {held_out} orders cancelled in time out of the order table."
    )
    if replay.drops is not None:
        console.print(
            f"The platforms failed to send {replay.drops.dropped} pushes; the bridge pulled "
            "(and read orders again from) the platforms to make up for them."
        )
    for result in results:
        for anomaly in result.anomalies:
            console.print(
                f"[yellow]anomaly[/] {result.platform} order {result.platform_order_id} "
                f"(order {result.order_id}, {result.store_id}): {anomaly}"
            )
    good = settled and not replay.refused
    for run in actions:
        action = run.play.order.action
        assert action is not None
        succeeded = sum(run.calls)
        console.print(
            f"[cyan]action[/] {action.action.value} on {run.play.channel.platform} order "
            f"{run.play.order.platform_order_id}: {run.status} after {run.attempts} attempts; "
            f"the platform saw {len(run.calls)} calls, {succeeded} successful"
            + (f" ({run.problem})" if run.problem else "")
        )
        good = good and (
            run.status == "done"
            and run.attempts == action.transient_failures + 1
            and succeeded == 1
        )
    for refusal in replay.refused:
        console.print(f"[red]push refused[/] {refusal}")
    if not settled:
        console.print("[red]the pipeline did not settle in time[/]")
    wrong = []
    for play in plays:
        seen = by_id.get((play.channel.platform, play.order.platform_order_id))
        got = None if seen is None else seen.state
        expected = play.order.expected_state
        if got != (None if expected is None else expected.value):
            wrong.append(
                f"{play.channel.platform} {play.order.platform_order_id} ({play.order.story}): "
                f"expected {expected or 'never stored'}, got {got or 'not stored'}"
            )
    if wrong:
        console.print(f"[bold red]{len(wrong)} of {len(plays)} orders did not end as expected:[/]")
        for line in wrong:
            console.print(f"  {line}")
    else:
        console.print(f"[green]All {len(plays)} orders ended as expected.[/]")
    _explore(console, results, database_url)
    return good and not wrong


def _explore(console: Console, results: Sequence[Outcome], database_url: str) -> None:
    prefix = ""
    if database_url != DEFAULT_DATABASE_URL:
        prefix = f"WAIMAI_DATABASE_URL={shlex.quote(database_url)} "
    noted = next((r.order_id for r in results if r.anomalies and r.order_id), None)
    lines = [
        "waimai-bridge orders list",
        "waimai-bridge orders list --state partially_refunded",
        *([f"waimai-bridge orders show {noted}"] if noted else []),
        "waimai-bridge actions list",
    ]
    console.print("\nExplore the result:")
    for line in lines:
        console.print(f"  {prefix}{line}", markup=False)

"""The fault soak: steady pushes into the real bridge while its parts fail, then the count.

    python bench/soak.py                 # two minutes of pushes, as CI runs it
    python bench/soak.py --seconds 1800  # half an hour, by hand

It starts a PostgreSQL cluster and a Redis server of its own (free ports, a temp folder;
never the machine's shared ones), ``waimai-bridge serve`` and two ``waimai-bridge worker``
processes on them, and the installed plugins' fake platform APIs. Every installed demo
channel's lunch orders (several stores, every lifecycle: cancels within the accept hold,
riders, partial and full refunds, refunds approved through the API) are pushed, signed, over
HTTP at a steady rate; a push that gets no 2xx is sent again (as platforms redeliver), a
share of ACKed ones twice, and some orders' steps in swapped order. Meanwhile, in turn every
``--fault-every`` seconds: a worker is SIGKILLed (and started again), Redis is killed and
restarted empty (its queues lost), PostgreSQL is restarted (``fast``, or ``immediate`` as a
crash).

At the end it waits (bounded) until every order's script is done and the bridge is idle,
then prints the events sent, ACKed and applied, the events lost (ACKed, never applied) and
applied twice, the platform calls per action, and every order whose state is not the one
its lifecycle implies. Exits 1 when any check fails; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from bench.services import OwnPostgres, OwnRedis  # noqa: E402
from bench.soak_checks import Observed, verdict  # noqa: E402
from bench.soak_faults import Bridge, bridge_command, environment, fault_loop  # noqa: E402
from bench.soak_load import Load, Tally, launch, noted  # noqa: E402
from bench.soak_plan import OrderPlan, Planner  # noqa: E402
from tests.processes import free_port, processes, wait_until  # noqa: E402
from waimai_bridge.config import Config, load_config  # noqa: E402
from waimai_bridge.demo import channel as channels  # noqa: E402
from waimai_bridge.demo.channel import DemoChannel, DemoFake  # noqa: E402
from waimai_bridge.demo.stack import to_toml  # noqa: E402
from waimai_bridge.models import Action  # noqa: E402
from waimai_bridge.plugins import PluginRegistry  # noqa: E402

TOKEN = "soak-token-0123456789abcdef"
STORES = ("S001", "S002", "S003", "S004")
BRIDGE: Mapping[str, Any] = {
    "shards": 4,
    "api_tokens": [TOKEN],
    "sweep_interval_seconds": 1.0,
    "resend_after_seconds": 5.0,
    "action_tries": 5,
    "action_retry_seconds": 1.0,
}
"""The bridge's settings beyond the URLs and the hold: a sweep every second, so that what a
lost message left is sent again within seconds of a fault rather than a minute."""


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"soak: {message}", file=sys.stderr, flush=True)


def write_config(
    folder: Path, found: list[DemoChannel], fakes: Mapping[str, DemoFake], urls: Mapping[str, str],
    hold: int,
) -> Path:  # fmt: skip
    """The bridge's config file: every channel's platform table, every store bound on each."""
    api_bases = {platform: fake.api_base for platform, fake in fakes.items()}
    document = {
        "bridge": {**BRIDGE, **urls, "accept_hold_seconds": hold},
        "platforms": {c.platform: dict(c.settings(api_bases.get(c.platform))) for c in found},
        "stores": {
            store: {"name": store, **{c.platform: dict(c.binding(store, n)) for c in found}}
            for n, store in enumerate(STORES, start=1)
        },
    }
    path = folder / "soak.toml"
    path.write_text(to_toml(document), encoding="utf-8")
    return path


def prepared(config_path: Path, found: list[DemoChannel], folder: Path) -> None:
    """Migrate the database and import every channel's SKU mapping."""
    skus = folder / "skus.csv"
    rows = [f"{c.platform},{code},{product}" for c in found for code, product in c.skus()]
    skus.write_text("\n".join(["platform,sku_code,product_id", *rows]) + "\n", encoding="utf-8")
    for arguments in (("migrate",), ("skus", "import", str(skus))):
        done = subprocess.run(
            bridge_command(config_path, *arguments), env=environment(), capture_output=True,
            text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"soak: {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}")


def scalar(engine: Engine, query: str) -> int:
    """The one number a query answers."""
    with engine.connect() as connection:
        return int(connection.execute(text(query)).scalar_one())


UNSETTLED = (
    "SELECT (SELECT count(*) FROM inbox WHERE status <> 'done')"
    " + (SELECT count(*) FROM platform_orders WHERE order_id IS NULL AND NOT discarded"
    "    AND hold_started_at_ms IS NOT NULL)"
    " + (SELECT count(*) FROM outbound_actions WHERE status = 'pending')"
)
"""Inbox events not applied (pending, or parked as failed), holds not over, actions not
ended."""


def unsettled(engine: Engine) -> int:
    """What the bridge has still to do (or could not do); -1 when the database is not there."""
    try:
        return scalar(engine, UNSETTLED)
    except Exception:
        return -1


def observed(
    engine: Engine, tally: Tally, started: list[OrderPlan], fakes: Mapping[str, DemoFake],
    settled: int,
) -> Observed:  # fmt: skip
    """What the soak saw, and what the bridge's database holds at the end."""
    with engine.connect() as connection:
        applied = {
            (platform, key): int(times)
            for platform, key, times in connection.execute(
                text("SELECT platform, idempotency_key, count(*) FROM order_events GROUP BY 1, 2")
            )
        }
        states = {
            (platform, order): state
            for platform, order, state in connection.execute(
                text(
                    "SELECT p.platform, p.platform_order_id, o.state FROM platform_orders p"
                    " LEFT JOIN orders o ON o.id = p.order_id"
                )
            )
        }
    with tally.lock:
        actions = list(tally.actions)
        kinds = {(run.platform, run.action) for run in actions}
        answered = {
            (platform, action): fakes[platform].calls(Action(action))
            for platform, action in kinds
            if platform in fakes
        }
        return Observed(
            sent=frozenset(tally.sent), acked=frozenset(tally.acked), applied=applied,
            expected={(p.platform, p.platform_order_id): p.expected_state for p in started},
            states=states, actions=actions,
            calls={kind: len(calls) for kind, calls in answered.items()},
            acts={kind: sum(calls) for kind, calls in answered.items()},
            unfinished=len(started) - tally.finished, unsettled=settled,
            refused=list(tally.refused),
        )  # fmt: skip


def drain(
    bridge: Bridge, load: Load, tally: Tally, engine: Engine, launched: int, bound: float
) -> int:
    """Wait, up to ``bound`` seconds, until every order's script is over and the bridge has
    nothing left to do; what it still had then (:func:`unsettled`)."""
    deadline = time.monotonic() + bound
    told = time.monotonic()
    while time.monotonic() < deadline:
        bridge.check()
        idle = load.idle()
        settled = unsettled(engine)
        if idle and settled == 0:
            break
        if time.monotonic() - told > 15:
            told = time.monotonic()
            log(
                f"waiting: {launched - tally.finished} orders not over, {settled} events, "
                "holds and actions not done (an action whose worker died mid-call is tried "
                "again after its in-flight timeout)"
            )
        time.sleep(0.2)
    load.stop()
    bridge.check()
    return unsettled(engine)


@contextmanager
def services(folder: Path) -> Iterator[tuple[OwnPostgres, OwnRedis]]:
    """The soak's own PostgreSQL and Redis, removed at the end."""
    postgres = OwnPostgres()
    redis = OwnRedis(folder)
    try:
        postgres.create()
        redis.start()
        yield postgres, redis
    finally:
        redis.kill()
        postgres.destroy()


def soak(options: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    """Run the soak in ``folder``: its figures, its failed checks, and notes (actions the
    bridge tried more than once)."""
    registry = PluginRegistry.discover(blocked=())
    found, problems = channels.discover(sorted(registry.platforms))
    if problems or not found:
        raise SystemExit(f"soak: demo channels: {problems or 'none installed'}")
    logs = folder / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        postgres, redis = stack.enter_context(services(folder))
        fakes: dict[str, DemoFake] = {}
        for channel in found:
            manager = channel.fake()
            if manager is not None:
                fakes[channel.platform] = stack.enter_context(manager)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        urls = {"database_url": postgres.url, "broker_url": redis.url, "public_base_url": base_url}
        config_path = write_config(folder, found, fakes, urls, options.hold)
        config: Config = load_config(config_path, registry, environ={})
        prepared(config_path, found, folder)
        start = stack.enter_context(processes(logs))
        bridge = Bridge(config_path, port, redis, postgres, start)
        bridge.launch()
        wait_until(lambda: httpx.get(f"{base_url}/healthz").status_code == 200, 60, "serve up")
        confirming = frozenset(
            name for name in fakes if Action.CONFIRM in registry.platform(name).manifest.actions
        )
        planner = Planner(
            found, STORES, config, registry, orders_per_store=12, seed=options.seed,
            confirming=confirming,
        )  # fmt: skip
        started: list[OrderPlan] = []

        def rounds(number: int) -> list[OrderPlan]:
            plans = planner.round(number)
            started.extend(plans)  # trimmed to the orders launched below
            return plans

        tally = Tally()
        load = Load(base_url, TOKEN, hold_s=options.hold, threads=options.threads, tally=tally)
        stopping = threading.Event()
        begun = time.monotonic()
        until = begun + options.seconds
        faults = threading.Thread(
            target=fault_loop, name="soak-faults",
            kwargs={"bridge": bridge, "every": options.fault_every, "until": until,
                    "started": begun, "stopping": stopping},
        )  # fmt: skip
        faults.start()
        log(f"{options.seconds:.0f} s of pushes at {options.rate} orders/s; faults every "
            f"{options.fault_every:.0f} s; logs in {logs}")  # fmt: skip
        try:
            launched = launch(
                load, rounds, rate=options.rate, until=until, stopping=stopping, seed=options.seed
            )
        except BaseException:
            stopping.set()
            raise
        finally:
            faults.join()
        del started[launched:]
        log(f"{launched} orders started, {len(bridge.faults)} faults; waiting for the rest")
        engine = create_engine(postgres.url, pool_pre_ping=True)
        stack.callback(engine.dispose)
        settled = drain(bridge, load, tally, engine, launched, options.drain)
        figures, failed = verdict(observed(engine, tally, started, fakes, settled))
        failed += bridge.surprises
        figures.update(
            seconds=options.seconds,
            pushes=tally.requests,
            duplicates_sent=tally.duplicates,
            answers=noted(tally),
            faults={kind: sum(1 for f in bridge.faults if f.kind == kind)
                    for kind in sorted({f.kind for f in bridge.faults})},
            fault_log=[[f.kind, f.at_s, f.took_s] for f in bridge.faults],
            platforms=sorted(c.platform for c in found),
            stores=len(STORES),
            took_s=round(time.monotonic() - begun, 1),
        )  # fmt: skip
        if failed:
            for process in [bridge.serve, *bridge.workers]:
                if process is not None:
                    print(f"----- {process.name} -----\n{process.output()[-4000:]}",
                          file=sys.stderr)  # fmt: skip
    notes = [
        f"{run.action} on {run.platform} order {run.platform_order_id}: {run.status} after "
        f"{run.attempts} platform calls"
        for run in tally.actions
        if run.attempts > 1
    ]
    return figures, failed, notes


def main() -> None:
    """Parse the options, run the soak, print the figures; exit 1 when a check failed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120, help="how long pushes go on")
    parser.add_argument("--rate", type=float, default=4.0, help="orders started per second")
    parser.add_argument("--fault-every", type=float, default=12.0, help="seconds between faults")
    parser.add_argument("--hold", type=int, default=10, help="the accept hold, in seconds")
    parser.add_argument("--threads", type=int, default=16, help="the load's sending threads")
    parser.add_argument(
        "--drain", type=float, default=180.0,
        help="how long to wait at the end for the orders to finish and the bridge to settle",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--keep", action="store_true", help="keep the logs and config folder")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="waimai-soak-"))
    try:
        figures, failed, notes = soak(options, folder)
    finally:
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)
    for line in notes:
        print(f"note: {line}")
    for line in failed[:50]:
        print(f"FAILED {line}")
    if len(failed) > 50:
        print(f"FAILED … and {len(failed) - 50} more")
    for name, value in figures.items():
        print(f"{name:>26}: {value}")
    figures["ok"] = not failed
    print(json.dumps(figures, ensure_ascii=False))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

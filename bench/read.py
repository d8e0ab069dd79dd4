"""The read benchmark: the order API of a bridge holding many orders, while it ingests.

    python bench/read.py --quick    # 200,000 orders, a few minutes
    python bench/read.py            # 1,000,000 orders

A fresh database gets the orders (:mod:`bench.preload`, over ``--stores`` stores), then
``waimai-bridge serve`` and the worker start as ``bench/run.py`` runs them. A burst of pushes
finds the bridge's sustained rate (or ``--ingest-rate`` gives the rate to ingest at); then,
for ``--seconds``, pushes arrive at half that rate while a reader (:mod:`bench.reader`, a
process of its own) calls the order API at ``--read-rate`` calls a second: pages of
``GET /api/v1/orders`` (the first, following ``next_cursor``, filtered by store, state,
platform or ``since``), ``GET /api/v1/orders/{id}`` and
``GET /api/v1/platform-orders/{platform}/{platform_order_id}``.

It reports p50/p99 per kind of call and over the lists and the shows, and ``ingest_ratio``:
the events committed per second during the read phase (inbox rows applied by a transaction
that started within it) over the events pushed per second. 1.0 is a worker that keeps up
with the pushes while the API is read; the events of the last moments, committed just after
the phase, take a little off it.

Every answer should be a 200: the others are counted by kind and status, and a 5xx makes
the run fail (exit 1) once its figures are printed. The last line printed is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.bridge import (  # noqa: E402
    API_TOKEN,
    SECRET,
    SHARDS,
    STORES,
    WORKER_PROCESSES,
    WORKER_THREADS,
    Layout,
    Prepared,
    Running,
    committed,
    done_count,
    drained,
    log,
    max_id,
    peak_rss_mb,
    prepared,
    running,
    scalar,
    started,
    store_ids,
    wait_for,
)
from bench.load import Result, drive, percentile, traffic  # noqa: E402
from bench.preload import installed_platforms, preload  # noqa: E402
from bench.reader import LISTS, Reads, Sample, read  # noqa: E402
from tests.processes import free_port, wait_for_port  # noqa: E402
from waimai_bridge.cli.processes import WORKER_NICENESS  # noqa: E402

SAMPLED_ORDERS = 5000
"""Orders the reader picks its shows and platform orders from."""


def sample_of(run: Running, stores: int) -> Sample:
    """Random orders of the database, its states and platforms, and the config's stores."""
    with run.engine.connect() as connection:
        orders = [
            (int(row[0]), str(row[1]), str(row[2]))
            for row in connection.execute(
                text("SELECT id, platform, platform_order_id FROM orders ORDER BY random()"
                     " LIMIT :n"),
                {"n": SAMPLED_ORDERS},
            )
        ]  # fmt: skip
        states = [
            str(row[0]) for row in connection.execute(text("SELECT DISTINCT state FROM orders"))
        ]
        platforms = [
            str(row[0]) for row in connection.execute(text("SELECT DISTINCT platform FROM orders"))
        ]
    return Sample(orders, store_ids(stores), sorted(states), sorted(platforms))


def sustained_rate(run: Running, events: int, shards: int) -> float:
    """The bridge's sustained rate over a burst of ``events`` events, end to end."""
    burst = traffic(events, stores=STORES, secret=SECRET, prefix="B")
    result, done = committed(run, burst.bodies, burst.unique, max_id(run.engine))
    drained(run.broker, shards=shards)
    return burst.unique / (done - result.started)


@contextmanager
def api_serve(run: Running, setup: Prepared, separate: bool, nice: int = 0) -> Iterator[int]:
    """The port the reader calls: ``serve``'s, or with ``separate`` that of a second
    ``serve`` process of the same config, for the API alone (a load balancer's route), at
    niceness ``nice``."""
    if not separate:
        yield run.port
        return
    port = free_port()
    command = ["nice", "-n", str(nice), sys.executable, "-m", "waimai_bridge",
               "--config", str(setup.config), "serve", "--port", str(port),
               "--log-level", "warning"]  # fmt: skip
    with started(command, setup.env, setup.logs, "serve-api"):
        wait_for_port(port)
        yield port


def ingest_while_reading(
    run: Running, sample: Sample, *, ingest_rate: float, read_rate: float, seconds: float,
    connections: int, api_port: int,
) -> dict[str, Any]:  # fmt: skip
    """Pushes at ``ingest_rate`` for ``seconds`` while the reader reads; what each saw, and
    how many events were committed meanwhile."""
    pushes = traffic(int(ingest_rate * seconds), stores=STORES, secret=SECRET, seed=2,
                     duplicates=0.0, prefix="R")  # fmt: skip
    after_id = max_id(run.engine)
    sent: dict[str, Any] = {}

    def ingest() -> None:
        sent["from"] = time.time()
        sent["result"] = drive("127.0.0.1", run.port, pushes.bodies, rate=ingest_rate)
        sent["to"] = time.time()

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(int).result()  # the reader's process started before the clock runs
        pushing = threading.Thread(target=ingest, name="ingest")
        pushing.start()
        reading = pool.submit(read, api_port, API_TOKEN, sample, rate=read_rate,
                              seconds=seconds, connections=connections)  # fmt: skip
        reads: Reads = reading.result()
        pushing.join()
    in_phase = scalar(
        run.engine,
        "SELECT count(*) FROM inbox WHERE id > :after AND status = 'done'"
        " AND done_at_ms BETWEEN :start AND :end",
        after=after_id, start=int(sent["from"] * 1000), end=int(sent["to"] * 1000),
    )  # fmt: skip
    wait_for(lambda: done_count(run.engine, after_id) >= pushes.unique, 600,
             "the bridge committing the pushes of the read phase")  # fmt: skip
    return {
        "reads": reads,
        "pushed": pushes.unique,
        "committed": in_phase,
        "result": sent["result"],
    }


def ms(values: list[float], fraction: float) -> float | None:
    """A percentile of latencies, rounded; None for none."""
    return round(percentile(values, fraction), 2) if values else None


def figures_of(reads: Reads) -> dict[str, Any]:
    """The latency figures of a read run."""
    latencies = reads.latencies_ms
    lists = [value for kind in LISTS for value in latencies.get(kind, [])]
    shows = latencies.get("show", [])
    platform_orders = latencies.get("platform_order", [])
    return {
        "reads": sum(len(values) for values in latencies.values()),
        "list_p50_ms": ms(lists, 0.5),
        "list_p99_ms": ms(lists, 0.99),
        "show_p50_ms": ms(shows, 0.5),
        "show_p99_ms": ms(shows, 0.99),
        "platform_order_p50_ms": ms(platform_orders, 0.5),
        "platform_order_p99_ms": ms(platform_orders, 0.99),
        "calls": {
            kind: {"count": len(values), "p50_ms": ms(values, 0.5), "p99_ms": ms(values, 0.99)}
            for kind, values in sorted(latencies.items())
        },
        "non_200": dict(sorted(reads.refused.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200,000 orders, a shorter phase")
    parser.add_argument("--orders", type=int, help="orders to preload (default 1,000,000)")
    parser.add_argument("--stores", type=int, default=STORES,
                        help=f"stores the orders are spread over (default {STORES})")  # fmt: skip
    parser.add_argument(
        "--seconds", type=float, help="the read phase's length (default 60, 20 quick)"
    )
    parser.add_argument("--ingest-rate", type=float, metavar="EVENTS_PER_S",
                        help="push at this rate while reading (default: half the sustained "
                        "rate)")  # fmt: skip
    parser.add_argument("--read-rate", type=float, default=50.0, metavar="CALLS_PER_S",
                        help="API calls a second (default 50)")  # fmt: skip
    parser.add_argument("--connections", type=int, default=4, help="the reader's (default 4)")
    parser.add_argument(
        "--api-process", action="store_true",
        help="serve the API from a second serve process, the pushes from the first",
    )  # fmt: skip
    parser.add_argument(
        "--api-nice", type=int, default=0,
        help="that process's niceness (negative: ahead of the pushes and the workers)",
    )  # fmt: skip
    options = parser.parse_args()
    orders = options.orders or (200_000 if options.quick else 1_000_000)
    seconds = options.seconds or (20.0 if options.quick else 60.0)
    layout = Layout(SHARDS, WORKER_PROCESSES, WORKER_THREADS, WORKER_NICENESS)
    with (
        tempfile.TemporaryDirectory(prefix="waimai-read-") as folder,
        prepared(Path(folder), SHARDS, max(STORES, options.stores)) as setup,
    ):
        log(f"preloading {orders:,} orders over {options.stores} stores")
        loaded = preload(setup.url, orders, stores=store_ids(options.stores),
                         platforms=installed_platforms(), shards=SHARDS)  # fmt: skip
        log(f"preloaded in {loaded.seconds:.0f} s")
        with running(setup, layout) as run:
            rate = None
            if options.ingest_rate is None:
                rate = sustained_rate(run, 3000 if options.quick else 10000, SHARDS)
                log(f"bridge sustained {rate:.0f} events/s")
            ingest_rate = options.ingest_rate or rate / 2  # type: ignore[operator]
            sample = sample_of(run, max(STORES, options.stores))
            log(f"reading at {options.read_rate:.0f} calls/s for {seconds:.0f} s "
                f"while pushing at {ingest_rate:.0f} events/s")  # fmt: skip
            with api_serve(run, setup, options.api_process, options.api_nice) as api_port:
                phase = ingest_while_reading(
                    run, sample, ingest_rate=ingest_rate, read_rate=options.read_rate,
                    seconds=seconds, connections=options.connections, api_port=api_port,
                )  # fmt: skip
            total = scalar(run.engine, "SELECT count(*) FROM orders")
            rss = {
                "serve_rss_mb": peak_rss_mb(run.web),
                "worker_rss_mb": max(peak_rss_mb(process) for process in run.workers),
            }
    pushed: Result = phase["result"]
    figures = {
        "orders": total,
        "preloaded_orders": loaded.orders,
        "preload_seconds": round(loaded.seconds, 1),
        "stores": options.stores,
        "sustained_events_per_s": None if rate is None else round(rate, 1),
        "ingest_rate_per_s": round(ingest_rate, 1),
        "ingest_ratio": round(phase["committed"] / phase["pushed"], 3),
        "ingest_failed_requests": pushed.failed,
        "read_rate_per_s": options.read_rate,
        "read_seconds": seconds,
        "api_process": options.api_process,
        "api_nice": options.api_nice,
        **figures_of(phase["reads"]),
        "events_pushed": phase["pushed"],
        **rss,
        "cpus": os.cpu_count(),
    }
    for name, value in figures.items():
        print(f"{name:>24}: {value}")
    print(json.dumps(figures))
    errors = [name for name in figures["non_200"] if name.split()[-1].startswith("5")]
    if errors:
        raise SystemExit(f"read benchmark: server errors: {', '.join(errors)}")


if __name__ == "__main__":
    main()

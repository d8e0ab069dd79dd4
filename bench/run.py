"""The benchmark: the bridge on this machine's Redis and PostgreSQL, next to a skeleton.

    python bench/run.py            # one to two minutes
    python bench/run.py --quick    # under a minute
    python bench/run.py --quick --preload-orders 200000    # and a database of 200,000 orders

It drives realistic mixed traffic (many stores, full order lifecycles with refunds and rider
events, a share of duplicate pushes) over HTTP into ``waimai-bridge serve`` + ``worker``, and
the same number of requests into the skeleton (:mod:`bench.skeleton`) just before and just
after the bridge, and reports:

- sustained events/s of each, end to end (first request sent → last event committed and
  every accept hold released / last message consumed), and their ratio (to the mean of the
  skeleton's two runs);
- webhook ACK latency p50/p99 and push-to-committed latency p50/p99 at half of the
  bridge's sustained rate (or at ``--paced-rate``), next to the skeleton's ACK and
  push-to-consumed latencies at the same rate (a third skeleton run, after the other two);
- peak RSS of each process; the CPU time per event of each part, in each phase, and how
  busy the whole machine was in the paced one; how many events the worker applied per
  transaction in each phase;
- the share of the machine's CPU time the hypervisor stole (ran something else on its
  virtual CPUs while they had work) in each run of the bridge and the skeleton: on a
  shared host it sets how fast the machine is, and the latency tails with it;
- the longest stall of the machine's disks in each paced run (requests in flight and
  none completed, :mod:`bench.disk`): every inbox write and every transaction waits for
  the disk, so a stall of tens of milliseconds shows in the tails as it is.

Before the paced phase the bridge's database gets its planner statistics (``ANALYZE``),
as autovacuum gives a running deployment's: the benchmark's database is too young to have
had autovacuum's first visit.

With ``--preload-orders N`` the bridge's sustained rate is measured twice, against the same
skeleton runs: on the empty database (``sustained_ratio_empty``), then after N orders with
their events were loaded (:mod:`bench.preload`, ``--stores`` stores); the usual figures are
the second run's and the paced phase's that follows it.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from dramatiq.brokers.redis import RedisBroker  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from bench.bridge import (  # noqa: E402
    REDIS,
    SECRET,
    SHARDS,
    STORES,
    WORKER_PROCESSES,
    WORKER_THREADS,
    Layout,
    Running,
    committed,
    done_count,
    drained,
    environment,
    log,
    max_id,
    peak_rss_mb,
    prepared,
    running,
    started,
    store_ids,
    wait_for,
)
from bench.load import Result, drive, percentile, traffic  # noqa: E402
from bench.preload import installed_platforms, preload  # noqa: E402
from bench.skeleton import LATENCIES as SKELETON_LATENCIES  # noqa: E402
from bench.worker import LATENCIES  # noqa: E402
from tests.processes import free_port, wait_for_port  # noqa: E402
from waimai_bridge.cli.processes import WORKER_NICENESS  # noqa: E402

SKELETON_THREADS = 4


def cpu_seconds(names: tuple[str, ...] = (), pids: tuple[int, ...] = ()) -> float:
    """CPU time used so far by the processes with these pids (and their children) or whose
    command name is one of ``names``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        parent = int(fields[1])
        if int(entry.name) in pids or parent in pids or command in names:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def per_event(
    processes: dict[str, Callable[[], float]], before: dict[str, float], events: int
) -> dict[str, float]:
    """CPU milliseconds per event each process used since ``before``."""
    return {
        name: round((measure() - before[name]) / events * 1000, 3)
        for name, measure in processes.items()
    }


def machine_ticks() -> tuple[int, int, int]:
    """Clock ticks of all CPUs so far: (busy, stolen, total). Busy counts the stolen
    ticks: those in which the hypervisor ran something else on this virtual machine's
    CPUs while it had work for them."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # without guest time, which user time already counts
    return total - idle, fields[7], total


def shares_between(
    before: tuple[int, int, int], after: tuple[int, int, int]
) -> tuple[float, float]:
    """The shares of the machine's CPU time that were busy and stolen between two
    :func:`machine_ticks`."""
    busy, stolen, total = (end - start for start, end in zip(before, after, strict=True))
    return (round(busy / total, 3), round(stolen / total, 3)) if total else (0.0, 0.0)


@contextmanager
def disk_stalls(watch: bool = True) -> Iterator[dict[str, float]]:
    """Watch the disks meanwhile (:mod:`bench.disk`), if ``watch``; once the block ends,
    the dict it yields holds the longest stall, in ms, as ``"longest_ms"``."""
    found: dict[str, float] = {}
    if not watch:
        yield found
        return
    watcher = subprocess.Popen(
        [sys.executable, "-m", "bench.disk"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    try:
        yield found
    finally:
        output, _ = watcher.communicate(timeout=10)  # its standard input closes: it stops
    if watcher.returncode != 0:
        raise SystemExit(f"benchmark: the disk watcher failed (exit {watcher.returncode})")
    found["longest_ms"] = float(output)


def analyzed(engine: Engine) -> None:
    """Give the bridge's tables the planner statistics a running deployment's have.

    The benchmark's database is a minute old, and autovacuum visits a database once a
    minute (``autovacuum_naptime``): without statistics, PostgreSQL folds a batch of more
    than about 20 orders by reading the whole event table, which a deployment does only in
    its first minute. Run between the phases, as the paced one measures a steady state
    (docs/performance.md).
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def skeleton(requests: list[bytes], logs: Path, rate: float | None = None) -> dict[str, Any]:
    """The skeleton's sustained rate, end to end; with ``rate``, its latencies at that rate
    instead (``ack_ms``, ``consumed_ms``, and the disks' longest stall meanwhile,
    ``disk_stall_ms``)."""
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    port = free_port()
    env = environment(SKELETON_REDIS_URL=REDIS, SKELETON_TIMED="1" if rate else "0")
    web = [sys.executable, "-m", "uvicorn", "bench.skeleton:app", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]  # fmt: skip
    work = [sys.executable, "-m", "dramatiq", "bench.skeleton", "--processes", "1",
            "--threads", str(SKELETON_THREADS)]  # fmt: skip
    broker = RedisBroker(url=REDIS)  # type: ignore[no-untyped-call]
    with (
        started(web, env, logs, "skeleton-web") as web_process,
        started(work, env, logs, "skeleton-worker") as worker,
    ):
        wait_for_port(port)
        time.sleep(1.0)
        drive("127.0.0.1", port, requests[:200])  # warm up
        broker.join("skeleton", interval=20, timeout=60_000)
        client.delete(SKELETON_LATENCIES)
        before = machine_ticks()
        with disk_stalls(watch=rate is not None) as disk:
            result = drive("127.0.0.1", port, requests, rate=rate)
        _, stolen = shares_between(before, machine_ticks())
        broker.join("skeleton", interval=20, timeout=300_000)
        done = time.perf_counter()
        rss = {"skeleton_web": peak_rss_mb(web_process), "skeleton_worker": peak_rss_mb(worker)}
    broker.close()
    consumed = [float(value) for value in client.lrange(SKELETON_LATENCIES, 0, -1)]
    client.close()
    return {
        "events_per_s": len(requests) / (done - result.started),
        "ack_rate": len(requests) / (result.finished - result.started),
        "failed": result.failed,
        "rss_mb": rss,
        "ack_ms": result.latencies_ms,
        "consumed_ms": consumed,
        "stolen": stolen,
        "disk_stall_ms": disk.get("longest_ms"),
    }


def measured_skeleton(requests: list[bytes], logs: Path, when: str) -> dict[str, Any]:
    """:func:`skeleton`, with what it is doing told on stderr."""
    log(f"skeleton ({when} the bridge): {len(requests)} requests")
    figures = skeleton(requests, logs)
    log(f"skeleton sustained {figures['events_per_s']:.0f} events/s")
    return figures


def events_per_transaction(
    engine: Any, *, sustained_after_id: int, paced_after_id: int
) -> dict[str, float]:
    """Inbox events the worker applied per transaction, in the sustained phase (inbox rows
    after ``sustained_after_id``) and in the paced one (after ``paced_after_id``): the events
    a transaction takes are marked done as of its start, so they share their shard and
    ``done_at_ms``."""
    query = text(
        "SELECT first_id > :paced_after_id, avg(events) FROM (SELECT min(id) AS first_id,"
        " count(*) AS events FROM inbox WHERE id > :sustained_after_id"
        " GROUP BY shard, done_at_ms) AS taken GROUP BY 1"
    )
    with engine.connect() as connection:
        rows = connection.execute(
            query, {"sustained_after_id": sustained_after_id, "paced_after_id": paced_after_id}
        )
        averages = {bool(paced): round(float(events), 1) for paced, events in rows}
    return {"sustained": averages.get(False, 0.0), "paced": averages.get(True, 0.0)}


def commit_latencies(client: redis.Redis, since_ms: float) -> list[float]:
    """Push-to-commit latencies the worker noted (:mod:`bench.worker`) of the events
    received since ``since_ms``."""
    noted = (entry.split() for entry in client.lrange(LATENCIES, 0, -1))
    return [float(latency) for received, latency in noted if float(received) >= since_ms - 1]


@dataclass(frozen=True)
class Preload:
    """What to load into the bridge's database between its two sustained phases: ``orders``
    orders over the first ``stores`` stores (:mod:`bench.preload`), and the traffic of the
    sustained phase after it."""

    orders: int
    stores: int
    after: list[bytes]


def sustained(
    run: Running, requests: list[bytes], unique: int, processes: dict[str, Callable[[], float]],
    shards: int,
) -> dict[str, Any]:  # fmt: skip
    """The bridge's sustained rate over ``requests`` (``unique`` distinct events), end to
    end, with the CPU per event and the stolen share meanwhile; once it returns, the
    bridge's queues are empty."""
    after_id = max_id(run.engine)
    before_cpu = {name: measure() for name, measure in processes.items()}
    before_ticks = machine_ticks()
    result, done = committed(run, requests, unique, after_id)
    _, stolen = shares_between(before_ticks, machine_ticks())
    # the paced phase measures a steady state: first the sustained phase's last
    # messages (releases of holds a late release already took along) are consumed
    drained(run.broker, shards=shards)
    return {
        "events_per_s": unique / (done - result.started),
        "result": result,
        "stolen": stolen,
        "cpu_ms": per_event(processes, before_cpu, unique),
        "after_id": after_id,
    }


def bridge(
    full: list[bytes],
    full_unique: int,
    paced: list[bytes],
    logs: Path,
    paced_rate: float | None,
    layout: Layout,
    preload_plan: Preload | None = None,
) -> dict[str, Any]:
    """The bridge's sustained rate, then its latencies at ``paced_rate`` (None: at half the
    sustained rate), its worker run as ``layout`` says. With ``preload_plan``, the sustained
    rate on the empty database first, then the preload, then the sustained rate again (the
    one the paced rate halves)."""
    stores = max(STORES, preload_plan.stores) if preload_plan else STORES
    with prepared(logs, layout.shards, stores) as setup, running(setup, layout) as run:
        engine, broker = run.engine, run.broker
        worker_pids = tuple(process.pid for process in run.workers)
        processes: dict[str, Callable[[], float]] = {
            "serve": lambda: cpu_seconds(pids=(run.web.pid,)),
            "worker": lambda: cpu_seconds(pids=worker_pids),
            "postgres": lambda: cpu_seconds(names=("postgres",)),
            "redis": lambda: cpu_seconds(names=("redis-server",)),
            # this process: the load generator, and its polls for the end of a phase
            "load_generator": time.process_time,
        }
        empty, loaded = None, None
        if preload_plan is not None:
            empty = sustained(run, full, full_unique, processes, layout.shards)
            log(f"bridge sustained {empty['events_per_s']:.0f} events/s on the empty database")
            log(f"preloading {preload_plan.orders:,} orders over {preload_plan.stores} stores")
            loaded = preload(
                setup.url, preload_plan.orders, stores=store_ids(preload_plan.stores),
                platforms=installed_platforms(), shards=layout.shards,
            )  # fmt: skip
            log(f"preloaded in {loaded.seconds:.0f} s")
            full = preload_plan.after
        phase = sustained(run, full, full_unique, processes, layout.shards)
        rate = phase["events_per_s"]
        analyzed(engine)
        pace = paced_rate or rate / 2
        log(f"bridge sustained {rate:.0f} events/s; now paced at {pace:.0f}/s")
        # ids, not counts: a duplicate push burns a sequence value without adding a row
        last_id = max_id(engine)
        before_cpu = {name: measure() for name, measure in processes.items()}
        before_ticks = machine_ticks()
        paced_started_ms = time.time() * 1000
        paced_unique = len(set(paced))
        with disk_stalls() as disk:
            paced_result = drive("127.0.0.1", run.port, paced, rate=pace)
            wait_for(
                lambda: done_count(engine, last_id) >= paced_unique,
                600,
                "the paced events committed",
            )
        paced_cpu_ms = per_event(processes, before_cpu, paced_unique)
        busy, paced_stolen = shares_between(before_ticks, machine_ticks())
        wait_for(
            lambda: len(commit_latencies(broker.client, paced_started_ms)) >= paced_unique,
            10,
            "the worker noting the paced events' push-to-commit latencies",
        )
        latencies = commit_latencies(broker.client, paced_started_ms)
        with engine.connect() as connection:
            taken = [
                float(row[0])
                for row in connection.execute(
                    text(
                        "SELECT done_at_ms - received_at_ms FROM inbox WHERE id > :skip ORDER BY id"
                    ),
                    {"skip": last_id},
                )
            ]
        batches = events_per_transaction(
            engine, sustained_after_id=phase["after_id"], paced_after_id=last_id
        )
        rss = {
            "serve": peak_rss_mb(run.web),
            "worker": max(peak_rss_mb(process) for process in run.workers),
        }
    result: Result = phase["result"]
    figures = {
        "events_per_s": rate,
        "paced_rate": pace,
        "ack_rate": len(full) / (result.finished - result.started),
        "failed": result.failed + paced_result.failed,
        "paced": paced_result,
        "commit_ms": latencies,
        "taken_ms": taken,
        "rss_mb": rss,
        "cpu_ms": phase["cpu_ms"],
        "paced_cpu_ms": paced_cpu_ms,
        "paced_busy": busy,
        "stolen": phase["stolen"],
        "paced_stolen": paced_stolen,
        "paced_disk_stall_ms": disk["longest_ms"],
        "batches": batches,
    }
    if empty is not None and loaded is not None:
        figures["empty"] = empty
        figures["failed"] += empty["result"].failed
        figures["preload_seconds"] = loaded.seconds
    return figures


def positive(text: str) -> float:
    """A command-line rate: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--events", type=int, help="events in the sustained phase")
    parser.add_argument(
        "--paced-rate",
        type=positive,
        metavar="EVENTS_PER_S",
        help="the latency phase's rate (default: half the bridge's sustained rate); a fixed "
        "rate compares two versions at the same load",
    )
    layout_options = (  # flag, metavar, choices, default, what it sets
        ("--shards", "S", range(1, 65), SHARDS, "the config's `shards` count"),
        ("--worker-processes", "N", range(1, 65), WORKER_PROCESSES,
         "worker processes, the shards split between them"),
        ("--worker-threads", "M", range(1, 65), WORKER_THREADS, "threads of each worker process"),
        ("--worker-nice", "NICENESS", range(20), WORKER_NICENESS,
         "the workers' `--nice`, as `waimai-bridge worker` defaults to"),
    )  # fmt: skip
    for flag, metavar, choices, default, what in layout_options:
        parser.add_argument(
            flag, type=int, choices=choices, default=default, metavar=metavar,
            help=f"{what} (default: {default})",
        )  # fmt: skip
    parser.add_argument(
        "--preload-orders", type=int, default=0, metavar="N",
        help="measure the sustained rate on the empty database, load N orders with their "
        "events (bench/preload.py), and measure it again before the paced phase",
    )  # fmt: skip
    parser.add_argument(
        "--stores", type=int, default=STORES, metavar="S",
        help=f"the stores the preloaded orders are spread over (default: {STORES})",
    )  # fmt: skip
    options = parser.parse_args()
    if options.worker_processes > options.shards:
        parser.error(
            f"--worker-processes {options.worker_processes} is more than --shards "
            f"{options.shards}: a process would have no shard"
        )
    events = options.events or (3000 if options.quick else 20000)
    load = traffic(events, stores=STORES, secret=SECRET)
    paced = traffic(events // 2, stores=STORES, secret=SECRET, seed=2, duplicates=0.0, prefix="P")
    preload_plan = None
    if options.preload_orders > 0:
        # the same traffic as the first sustained phase's, of other orders
        after = traffic(events, stores=STORES, secret=SECRET, prefix="Q")
        preload_plan = Preload(options.preload_orders, options.stores, after.bodies)
    with tempfile.TemporaryDirectory(prefix="waimai-bench-") as folder:
        logs = Path(folder)
        # the skeleton before and after the bridge: this shared machine's speed drifts
        # within minutes, and the mean of the two brackets the bridge's run
        skeletons = [measured_skeleton(load.bodies, logs, "before")]
        log(f"bridge: {len(load.bodies)} requests ({load.unique} distinct events)")
        bridge_figures = bridge(
            load.bodies, load.unique, paced.bodies, logs, options.paced_rate,
            Layout(options.shards, options.worker_processes, options.worker_threads,
                   options.worker_nice),
            preload_plan,
        )  # fmt: skip
        skeletons.append(measured_skeleton(load.bodies, logs, "after"))
        log(f"skeleton: {len(paced.bodies)} requests paced at {bridge_figures['paced_rate']:.0f}/s")
        paced_skeleton = skeleton(paced.bodies, logs, rate=bridge_figures["paced_rate"])
    paced_result: Result = bridge_figures["paced"]
    skeleton_figures = {
        name: statistics.mean(run[name] for run in skeletons)
        for name in ("events_per_s", "ack_rate")
    }
    skeleton_figures["failed"] = sum(run["failed"] for run in skeletons)
    skeleton_figures["rss_mb"] = {
        name: max(run["rss_mb"][name] for run in skeletons)
        for name in ("skeleton_web", "skeleton_worker")
    }
    figures = {
        "events": load.unique,
        "events_per_s": round(bridge_figures["events_per_s"], 1),
        "skeleton_events_per_s": round(skeleton_figures["events_per_s"], 1),
        "skeleton_events_per_s_before_after": [round(run["events_per_s"], 1) for run in skeletons],
        "ratio": round(bridge_figures["events_per_s"] / skeleton_figures["events_per_s"], 3),
        "ack_rate_per_s": round(bridge_figures["ack_rate"], 1),
        "skeleton_ack_rate_per_s": round(skeleton_figures["ack_rate"], 1),
        "paced_rate_per_s": round(bridge_figures["paced_rate"], 1),
        "ack_p50_ms": round(percentile(paced_result.latencies_ms, 0.5), 2),
        "ack_p99_ms": round(percentile(paced_result.latencies_ms, 0.99), 2),
        "skeleton_ack_p50_ms": round(percentile(paced_skeleton["ack_ms"], 0.5), 2),
        "skeleton_ack_p99_ms": round(percentile(paced_skeleton["ack_ms"], 0.99), 2),
        "commit_p50_ms": round(percentile(bridge_figures["commit_ms"], 0.5), 1),
        "commit_p99_ms": round(percentile(bridge_figures["commit_ms"], 0.99), 1),
        "taken_p50_ms": round(percentile(bridge_figures["taken_ms"], 0.5), 1),
        "taken_p99_ms": round(percentile(bridge_figures["taken_ms"], 0.99), 1),
        "skeleton_consumed_p50_ms": round(percentile(paced_skeleton["consumed_ms"], 0.5), 1),
        "skeleton_consumed_p99_ms": round(percentile(paced_skeleton["consumed_ms"], 0.99), 1),
        "serve_rss_mb": bridge_figures["rss_mb"]["serve"],
        "worker_rss_mb": bridge_figures["rss_mb"]["worker"],
        "skeleton_web_rss_mb": skeleton_figures["rss_mb"]["skeleton_web"],
        "skeleton_worker_rss_mb": skeleton_figures["rss_mb"]["skeleton_worker"],
        "cpu_ms_per_event": bridge_figures["cpu_ms"],
        "paced_cpu_ms_per_event": bridge_figures["paced_cpu_ms"],
        "paced_machine_busy": bridge_figures["paced_busy"],
        "machine_stolen": bridge_figures["stolen"],
        "paced_machine_stolen": bridge_figures["paced_stolen"],
        "skeleton_machine_stolen_before_after": [run["stolen"] for run in skeletons],
        "skeleton_paced_machine_stolen": paced_skeleton["stolen"],
        "paced_disk_stall_ms": bridge_figures["paced_disk_stall_ms"],
        "skeleton_paced_disk_stall_ms": paced_skeleton["disk_stall_ms"],
        "events_per_transaction": bridge_figures["batches"],
        "failed_requests": bridge_figures["failed"]
        + skeleton_figures["failed"]
        + paced_skeleton["failed"],
        "shards": options.shards,
        "worker_processes": options.worker_processes,
        "worker_threads": options.worker_threads,
        "worker_nice": options.worker_nice,
        "cpus": os.cpu_count(),
    }
    if preload_plan is not None:
        empty_rate = bridge_figures["empty"]["events_per_s"]
        figures |= {
            "events_per_s_empty": round(empty_rate, 1),
            "sustained_ratio_empty": round(empty_rate / skeleton_figures["events_per_s"], 3),
            "preloaded_orders": preload_plan.orders,
            "stores": preload_plan.stores,
            "preload_seconds": round(bridge_figures["preload_seconds"], 1),
        }
    for name, value in figures.items():
        print(f"{name:>24}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""The bridge as the benchmarks run it: a fresh PostgreSQL database with its config, and
``waimai-bridge serve`` and worker processes on this machine's Redis."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from sqlalchemy import Engine, create_engine, text

from bench.load import PRICE, Result, drive
from tests.processes import free_port, plugin_site, wait_for_port
from waimai_bridge.pipeline.shards import queue_name

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
API_TOKEN = "bench-api-token-0001"
POSTGRES = os.environ.get(
    "WAIMAI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("WAIMAI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
STORES = 50
"""The stores the traffic's orders are spread over."""
SHARDS = 4
"""The bridge's shards: two for each worker process. Each process applies its shards'
events one transaction at a time, so at a moderate rate a process of fewer shards takes
more events a transaction; on a 2-core machine four shards rather than the bridge's
default eight cost the worker less CPU per event, and events waited less for their
commit (docs/performance.md)."""
WORKER_PROCESSES = 2
WORKER_THREADS = 1
"""The bridge's worker: two processes of one thread, each consuming its own half of the
shards (``--shards``), as docs/deploy.md lays out a small machine. Python threads of one
process take turns with the GIL; on a 2-core machine one process of four threads let
events wait longer for their commit (docs/performance.md)."""
PREFETCH = 64


def log(message: str) -> None:
    """A line of progress on stderr."""
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Layout:
    """How the bridge's worker runs: the shard count, and processes of threads at a
    niceness, the processes splitting the shards between them."""

    shards: int
    processes: int
    threads: int
    niceness: int


def shard_split(layout: Layout) -> list[list[int]]:
    """The shards each worker process consumes: every one once."""
    shards = list(range(layout.shards))
    return [shards[index :: layout.processes] for index in range(layout.processes)]


def store_ids(count: int) -> list[str]:
    """The config's first ``count`` store ids."""
    return [f"S{number:03}" for number in range(count)]


@contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for the run, dropped after it."""
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"waimai_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def started(
    command: list[str], env: dict[str, str], logs: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose output goes to ``logs/<name>.log``, ended after the block."""
    with (logs / f"{name}.log").open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def peak_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """Peak resident memory of a process and its children, in MiB."""
    pids = [process.pid]
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    peak = 0.0
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
    return round(peak, 1)


def environment(**extra: str) -> dict[str, str]:
    """The environment of a benchmark's process: no ``WAIMAI_`` variables of the caller."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAIMAI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["dramatiq_queue_prefetch"] = str(PREFETCH)
    env.update(extra)
    return env


def config(folder: Path, database_url: str, shards: int, stores: int = STORES) -> Path:
    """The bridge's config: the ``testpay`` platform, ``stores`` stores, accept hold 1 s."""
    path = folder / "bench.toml"
    listed = "\n".join(
        f'[stores.{store}]\ntestpay = {{ shop = "{100000 + number}" }}'
        for number, store in enumerate(store_ids(stores))
    )
    path.write_text(
        f"""
[bridge]
database_url = "{database_url}"
broker_url = "{REDIS}"
shards = {shards}
accept_hold_seconds = 1
api_tokens = ["{API_TOKEN}"]

[platforms.testpay]
secret = "{SECRET}"

{listed}
""",
        encoding="utf-8",
    )
    return path


def sku_table(folder: Path) -> Path:
    """The chain's SKU mapping of the items in the traffic's orders, as a CSV to import (a
    chain maps its SKUs; an unmapped one is an anomaly to fix, not the normal case)."""
    path = folder / "skus.csv"
    lines = [f"testpay,{item['sku_code']},P-{item['sku_code']}" for item in PRICE["items"]]
    path.write_text("\n".join(["platform,sku_code,product_id", *lines]) + "\n", encoding="utf-8")
    return path


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until ``check()``; the ``perf_counter`` time it held at."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark: {what} did not happen within {timeout} s")
        time.sleep(0.02)
    return time.perf_counter()


def scalar(engine: Any, query: str, **parameters: Any) -> int:
    """The one number a query answers."""
    with engine.connect() as connection:
        value: int = connection.execute(text(query), parameters).scalar_one()
        return value


def drained(broker: RedisBroker, *, shards: int) -> None:
    """Wait until every shard queue of the bridge, and its delay queue, is empty."""
    for shard in range(shards):
        for name in (queue_name(shard), dq_name(queue_name(shard))):
            broker.join(name, interval=20, timeout=300_000)


def max_id(engine: Any) -> int:
    """The newest inbox row's id."""
    return scalar(engine, "SELECT coalesce(max(id), 0) FROM inbox")


def done_count(engine: Any, after_id: int = 0) -> int:
    """Inbox events applied, of the rows after ``after_id``."""
    return scalar(
        engine, "SELECT count(*) FROM inbox WHERE id > :after AND status = 'done'", after=after_id
    )


def held_count(engine: Any) -> int:
    """Accepted orders whose hold is not released yet (stored or discarded)."""
    return scalar(
        engine,
        "SELECT count(*) FROM platform_orders WHERE order_id IS NULL AND NOT discarded "
        "AND hold_started_at_ms IS NOT NULL",
    )


@dataclass(frozen=True)
class Prepared:
    """A migrated bridge database with the traffic's SKUs, and the bridge's config."""

    url: str
    config: Path
    env: dict[str, str]
    logs: Path


@contextmanager
def prepared(logs: Path, shards: int, stores: int = STORES) -> Iterator[Prepared]:
    """A fresh database, migrated, its SKU mapping imported, and the config of it; the
    benchmark's Redis database flushed."""
    redis.Redis.from_url(REDIS).flushdb()
    site = plugin_site(logs / "site")
    env = environment(BENCH_REDIS_URL=REDIS)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    with database() as url:
        path = config(logs, url, shards, stores)
        bridge_cli = [sys.executable, "-m", "waimai_bridge", "--config", str(path)]
        subprocess.run([*bridge_cli, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [*bridge_cli, "skus", "import", str(sku_table(logs))],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        yield Prepared(url, path, env, logs)


@dataclass(frozen=True)
class Running:
    """``serve`` on ``port`` and the worker processes, with an engine on the database and
    a broker on the Redis they use."""

    port: int
    web: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    engine: Engine
    broker: RedisBroker


@contextmanager
def running(setup: Prepared, layout: Layout) -> Iterator[Running]:
    """``serve`` and the worker as ``layout`` says, until the block ends. The worker runs as
    ``python -m bench.worker``: ``waimai-bridge worker`` noting each push-to-commit
    latency (:mod:`bench.worker`)."""
    bridge_cli = [sys.executable, "-m", "waimai_bridge", "--config", str(setup.config)]
    port = free_port()
    serve = [*bridge_cli, "serve", "--port", str(port), "--log-level", "warning"]
    timed_cli = [sys.executable, "-m", "bench.worker", "--config", str(setup.config)]
    work = [*timed_cli, "worker", "--threads", str(layout.threads), "--log-level", "warning"]
    work += ["--nice", str(layout.niceness)]
    engine = create_engine(setup.url)
    broker = RedisBroker(url=REDIS)  # type: ignore[no-untyped-call]
    env, logs = setup.env, setup.logs
    try:
        with started(serve, env, logs, "serve") as web, ExitStack() as stack:
            workers = [
                stack.enter_context(
                    started(
                        [*work, "--shards", ",".join(map(str, shards))], env, logs, f"worker-{n}"
                    )
                )
                for n, shards in enumerate(shard_split(layout))
            ]
            wait_for_port(port)
            time.sleep(1.0)
            yield Running(port, web, workers, engine, broker)
    finally:
        engine.dispose()
        broker.close()


def committed(
    run: Running, requests: list[bytes], unique: int, after_id: int
) -> tuple[Result, float]:
    """Send ``requests`` as fast as ``serve`` answers, and wait until their ``unique``
    events are committed (inbox rows after ``after_id``) and every accept hold released;
    what the sending measured, and the ``perf_counter`` time all that was done."""
    result = drive("127.0.0.1", run.port, requests)
    wait_for(
        lambda: done_count(run.engine, after_id) >= unique,
        900,
        "the bridge committing every event",
    )
    return result, wait_for(lambda: held_count(run.engine) == 0, 900, "every accept hold released")

"""The long-running commands: ``serve`` (web) and ``worker`` (Dramatiq workers)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

import click

from waimai_bridge.cli.context import BridgeContext, pass_context
from waimai_bridge.runtime import settle_heap

WORKER_NICENESS = 2
"""The niceness a worker runs at unless told otherwise: a little below the web processes,
whose answers the platforms wait for (measured in docs/performance.md)."""


SHUTDOWN_GRACE_S = 5
"""How long a stopping server waits for open connections (an order board's live stream
never ends by itself) before it closes them."""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--worker/--no-worker",
    default=None,
    help="Work the queue in this process too (default: only with the in-process broker).",
)
@click.option("--log-level", default="info", show_default=True)
@pass_context
def serve(bridge: BridgeContext, host: str, port: int, worker: bool | None, log_level: str) -> None:
    """Run the web receivers and the API.

    With the in-process broker (the embedded default) this process also runs the worker
    and creates or upgrades its SQLite schema.
    """
    import uvicorn

    from waimai_bridge.web.app import create_app

    _configure_logging(log_level)
    app = create_app(bridge.runtime(), run_worker=worker)
    settle_heap()
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )  # fmt: skip


@click.command()
@click.option(
    "--shards",
    "shard_list",
    default=None,
    help="Comma-separated shard numbers to consume (default: all).",
)
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--metrics-port",
    default=None,
    type=click.IntRange(1, 65535),
    help="Serve the workers' Prometheus metrics at http://HOST:PORT/metrics (with "
    "--processes N, one port per process: PORT to PORT+N-1). Default: not served.",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address of --metrics-port."
)
@click.option(
    "--nice",
    "niceness",
    default=WORKER_NICENESS,
    show_default=True,
    type=click.IntRange(0, 19),
    help="Run at this niceness (0 the normal CPU priority, 19 the lowest), so that web "
    "processes on the same machine get the CPU first; the workers then catch up in larger "
    "batches. A worker started at a lower priority keeps it. Niceness ranks processes of "
    "one scheduling group only (one cgroup or session; docs/deploy.md).",
)
@click.option("--log-level", default="info", show_default=True)
@pass_context
def worker(
    bridge: BridgeContext,
    shard_list: str | None,
    processes: int,
    threads: int,
    metrics_port: int | None,
    metrics_host: str,
    niceness: int,
    log_level: str,
) -> None:
    """Run Dramatiq workers on the configured broker (all shard queues or --shards)."""
    settings = bridge.config.bridge
    if not settings.broker_url:
        raise click.ClickException(
            'the broker is in-process (broker_url = ""): `waimai-bridge serve` works the queue '
            "itself; set [bridge].broker_url or WAIMAI_BROKER_URL to run separate workers"
        )
    shards = _parse_shards(shard_list, settings.shards)
    _configure_logging(log_level)
    if metrics_port is not None and metrics_port + processes - 1 > 65535:
        raise click.BadParameter(
            f"{processes} processes need ports {metrics_port} to {metrics_port + processes - 1}",
            param_hint="--metrics-port",
        )
    _lower_priority(niceness)  # before any thread or child starts: they inherit it
    if processes > 1:
        metrics = None if metrics_port is None else (metrics_host, metrics_port)
        sys.exit(
            _supervise(
                bridge.config_path, shard_list, processes, threads, niceness, log_level, metrics
            )
        )
    if metrics_port is not None:
        _serve_metrics(metrics_host, metrics_port)
    runtime = bridge.runtime()
    runtime.database.ensure_schema()
    runtime.start_worker(shards=shards, threads=threads)
    settle_heap()
    shown = ", ".join(str(shard) for shard in sorted(shards)) if shards else "all"
    click.echo(
        f"worker consuming shards {shown} of {settings.shards} with {threads} threads", err=True
    )
    _wait_for_signal()
    runtime.stop()


def _parse_shards(shard_list: str | None, count: int) -> set[int] | None:
    if shard_list is None:
        return None
    try:
        shards = {int(part) for part in shard_list.split(",") if part.strip()}
    except ValueError:
        raise click.BadParameter(
            "must be shard numbers separated by commas, e.g. 0,3", param_hint="--shards"
        ) from None
    wrong = sorted(shard for shard in shards if not 0 <= shard < count)
    if wrong or not shards:
        raise click.BadParameter(
            f"shards are numbered 0 to {count - 1}; got {shard_list!r}", param_hint="--shards"
        )
    return shards


def _lower_priority(niceness: int) -> None:
    """Run this process (its main thread, and so every thread and child it starts after)
    at ``niceness``, unless it already runs at a lower priority."""
    if not hasattr(os, "setpriority"):  # not a POSIX system: priorities are left alone
        return
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


def _serve_metrics(host: str, port: int) -> None:
    """Serve this process's Prometheus metrics at ``http://host:port/metrics``."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None


QUIET_LOGGERS = ("httpx", "httpcore", "sqlalchemy.engine", "sqlalchemy.pool", "hpack")
"""Loggers kept at WARNING whatever the level asked: their lower lines hold URLs with their
queries (where some platforms put signatures), headers and statement parameters."""


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def _wait_for_signal() -> None:
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    stop.wait()


def _supervise(
    config_path: str | None,
    shard_list: str | None,
    processes: int,
    threads: int,
    niceness: int,
    level: str,
    metrics: tuple[str, int] | None,
) -> int:
    """Run ``processes`` single-process workers and stop them together (``metrics``: the
    host and first port of their metrics, one port each)."""
    command = [sys.executable, "-m", "waimai_bridge"]
    if config_path:
        command += ["--config", config_path]
    command += ["worker", "--processes", "1", "--threads", str(threads), "--nice", str(niceness)]
    command += ["--log-level", level]
    if shard_list:
        command += ["--shards", shard_list]
    children = [
        subprocess.Popen(
            command
            if metrics is None
            else [*command, "--metrics-host", metrics[0], "--metrics-port", str(metrics[1] + index)]
        )
        for index in range(processes)
    ]

    def forward(number: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(number)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, forward)
    return max(child.wait() for child in children)

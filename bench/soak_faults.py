"""The soak's running bridge (``serve`` and worker processes on its own PostgreSQL and Redis)
and the faults done to it on a schedule: a worker SIGKILLed, Redis killed (its queues lost),
PostgreSQL restarted."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.services import OwnPostgres, OwnRedis
from tests.processes import ROOT, Process

WORKERS = 2
"""Worker processes, each consuming every shard: while one is down the other works on."""
WORKER_DOWN_S = 1.0
REDIS_DOWN_S = 2.0
POSTGRES_DOWN_S = 2.0
"""How long each fault keeps its part down before it is started again."""


def bridge_command(config: Path, *arguments: str) -> list[str]:
    """``waimai-bridge --config CONFIG ARGUMENTS…`` as a deployment runs it (the tests' own
    helper adds ``--log-level debug``)."""
    return [sys.executable, "-m", "waimai_bridge", "--config", str(config), *arguments]


def environment() -> dict[str, str]:
    """The environment of a bridge process: no ``WAIMAI_*`` setting of the caller's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAIMAI_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class Fault:
    """One fault done: what, when (seconds into the soak) and how long it took to undo."""

    kind: str
    at_s: float
    took_s: float


@dataclass
class Bridge:
    """The bridge's processes, started with ``start`` (:func:`tests.processes.processes`)."""

    config: Path
    port: int
    redis: OwnRedis
    postgres: OwnPostgres
    start: Callable[[str, list[str], dict[str, str]], Process]
    workers: list[Process] = field(default_factory=list)
    serve: Process | None = None
    faults: list[Fault] = field(default_factory=list)
    surprises: list[str] = field(default_factory=list)
    """Processes that ended without being killed: each is a finding."""
    _killed: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def launch(self) -> None:
        """Start ``serve`` and the workers."""
        command = bridge_command(self.config, "serve", "--port", str(self.port))
        self.serve = self.start("serve", command, environment())
        self.workers = [self._worker(number) for number in range(WORKERS)]

    def _worker(self, number: int) -> Process:
        command = bridge_command(self.config, "worker", "--threads", "2")
        return self.start(f"worker-{number}", command, environment())

    def kill_worker(self, number: int) -> None:
        """SIGKILL a worker; start it again a moment later."""
        with self._lock:
            victim = self.workers[number]
            self._killed.add(victim.popen.pid)
            victim.kill()
        time.sleep(WORKER_DOWN_S)  # the fault's length, not a wait for something
        with self._lock:
            self.workers[number] = self._worker(number)

    def restart_redis(self) -> None:
        """Kill Redis (it keeps nothing: every queue and message is lost) and start it."""
        self.redis.kill()
        time.sleep(REDIS_DOWN_S)
        self.redis.start()

    def restart_postgres(self, mode: str) -> None:
        """Stop PostgreSQL (``fast`` or ``immediate``, as a crash) and start it again."""
        self.postgres.stop(mode)
        time.sleep(POSTGRES_DOWN_S)
        self.postgres.start()

    def check(self) -> None:
        """Note (and replace) a process that ended without being killed."""
        with self._lock:
            processes = [("serve", self.serve), *((f"worker-{n}", w) for n, w in
                                                   enumerate(self.workers))]  # fmt: skip
            for name, process in processes:
                if process is None or process.popen.poll() is None:
                    continue
                if process.popen.pid in self._killed:
                    continue
                self._killed.add(process.popen.pid)
                self.surprises.append(
                    f"{name} ended by itself (exit {process.popen.returncode}); its log: "
                    f"{process.log}\n{process.output()[-3000:]}"
                )
                if name.startswith("worker-"):
                    number = int(name.split("-")[1])
                    self.workers[number] = self._worker(number)


SCHEDULE = ("worker", "redis", "postgres-fast", "worker", "redis", "postgres-immediate")
"""The faults in turn, one every ``--fault-every`` seconds."""


def fault_loop(
    bridge: Bridge, *, every: float, until: float, started: float, stopping: threading.Event
) -> None:
    """Do the faults of :data:`SCHEDULE` in turn every ``every`` seconds until ``until``
    (monotonic), watching the processes meanwhile."""
    kinds = Counter[str]()
    due = started + every
    turn = 0
    while not stopping.is_set():
        bridge.check()
        now = time.monotonic()
        if now >= until:
            return
        if now < due:
            stopping.wait(min(due - now, 0.5))
            continue
        kind = SCHEDULE[turn % len(SCHEDULE)]
        turn += 1
        begun = time.monotonic()
        if kind == "worker":
            bridge.kill_worker(kinds[kind] % WORKERS)
        elif kind == "redis":
            bridge.restart_redis()
        else:
            bridge.restart_postgres(kind.removeprefix("postgres-"))
        kinds[kind] += 1
        took = time.monotonic() - begun
        bridge.faults.append(Fault(kind, round(begun - started, 1), round(took, 2)))
        due = begun + every

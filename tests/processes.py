"""Running the bridge's real commands (and a Redis server of a test's own) as processes."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


LISTENING_PORTS = range(20_000, 32_768)
"""Where a test's servers listen: below the kernel's default range of ephemeral ports
(32768-60999), from which every outgoing connection takes its local port. A port picked
there could be taken by a connection to PostgreSQL or Redis before the server binds it."""


def free_port() -> int:
    """A TCP port nobody uses right now, outside the range of ephemeral ports."""
    return free_ports(1)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive TCP ports nobody uses right now, outside the
    range of ephemeral ports."""
    while True:
        first = random.randrange(LISTENING_PORTS.start, LISTENING_PORTS.stop - count + 1)
        if all(_is_free(port) for port in range(first, first + count)):
            return first


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def plugin_site(folder: Path) -> Path:
    """A site folder registering the ``testpay`` plugin (``tests.testpay``) as installed."""
    info = folder / "waimai_bridge_testpay-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: waimai-bridge-testpay\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[waimai_bridge]\ntestpay = tests.testpay\n", encoding="utf-8"
    )
    return folder


def environment(site: Path, **extra: str) -> dict[str, str]:
    """The environment of a bridge process that finds the test plugin."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAIMAI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    env.update(extra)
    return env


class Process:
    """A child process whose output goes to a log file, shown when a test fails."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}-{time.monotonic_ns()}.log"
        with self.log.open("wb") as output:
            self.popen = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
            )

    def output(self) -> str:
        """What it printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up, as when a machine dies."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def processes(logs: Path) -> Iterator[Callable[..., Process]]:
    """Start processes with ``start(name, command, env)``; all are stopped at the end, and
    their output is printed when the block fails."""
    started: list[Process] = []

    def start(name: str, command: list[str], env: dict[str, str]) -> Process:
        process = Process(name, command, env, logs)
        started.append(process)
        return process

    try:
        yield start
    except BaseException:
        for process in started:
            print(f"----- {process.name} -----\n{process.output()[-6000:]}", file=sys.stderr)
        raise
    finally:
        for process in reversed(started):
            process.stop()
    for process in started:
        assert_no_secrets(process)


def assert_no_secrets(process: Process) -> None:
    """Fail when the output of a bridge process holds a secret of its config: a token, a
    platform's or a store's secret, the password of a database or broker URL."""
    command = process.popen.args
    assert isinstance(command, list)
    if "--config" not in command:
        return
    config = Path(command[command.index("--config") + 1])
    output = process.output()
    for secret in configured_secrets(tomllib.loads(config.read_text(encoding="utf-8"))):
        assert secret not in output, f"{process.name} logged a secret of {config}: {secret[:3]}…"


SECRET_KEYS = ("secret", "token", "password", "key")
"""Config keys whose values are secrets: those whose name holds one of these words."""


def configured_secrets(config: dict[str, Any]) -> set[str]:
    """Every secret in a bridge config: its API tokens, the values of keys named like
    secrets in its tables, and the passwords of its URLs."""
    found: set[str] = set()
    pending: list[tuple[str, Any]] = [("", config)]
    while pending:
        name, value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.items())
        elif isinstance(value, list):
            pending.extend((name, item) for item in value)  # api_tokens' items are tokens
        elif isinstance(value, str):
            if any(word in name for word in SECRET_KEYS):
                found.add(value)
            if "://" in value and (password := httpx.URL(value).password):
                found.add(password)
    return {secret for secret in found if len(secret) >= 6}


def bridge_command(config: Path, *arguments: str) -> list[str]:
    """``waimai-bridge --config CONFIG ARGUMENTS…`` run by this interpreter; ``serve`` and
    ``worker`` log everything (``--log-level debug``), for :func:`assert_no_secrets`."""
    logging = ["--log-level", "debug"] if arguments[:1] in (("serve",), ("worker",)) else []
    return [sys.executable, "-m", "waimai_bridge", "--config", str(config), *arguments, *logging]


def redis_command(port: int, folder: Path) -> list[str]:
    """A throwaway Redis server that keeps nothing on disk."""
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is required (see .ci/services)"
    return [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder)]  # fmt: skip


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str | None = None) -> Any:
    """Poll ``check`` until it returns something true (a connection error counts as not
    yet), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (httpx.TransportError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or check.__doc__ or check}: not within {timeout} s")
        time.sleep(0.02)


def wait_for_port(port: int, timeout: float = 20) -> None:
    """Wait until something listens on ``port``."""

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout, f"a listener on port {port}")


@contextmanager
def running_serve(folder: Path, config_text: str, **env: str) -> Iterator[str]:
    """An embedded ``waimai-bridge serve`` with ``config_text`` (written to ``folder``) on a
    free port, healthy; its base URL. Its output is kept in ``folder/logs``."""
    config = folder / "bridge.toml"
    config.write_text(config_text, encoding="utf-8")
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with processes(logs) as start:
        command = bridge_command(config, "serve", "--port", str(port))
        start("serve", command, environment(folder, **env))
        wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, "serve healthy")
        yield base

"""The soak's own Redis and PostgreSQL servers: on free ports of 127.0.0.1, in a folder of
their own, killed and started again on demand (never the machine's shared servers)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import redis

from tests.processes import free_port, redis_command, wait_until

POSTGRES_USER = "postgres"
"""The account that runs PostgreSQL when the soak runs as root (``initdb`` refuses root)."""


class OwnRedis:
    """A ``redis-server`` that keeps nothing on disk: killed, it comes back empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = folder / "redis.log"

    def start(self) -> None:
        """Start it (on the same port as before) and wait until it answers."""
        with self._log.open("ab") as output:
            self._process = subprocess.Popen(
                redis_command(self.port, self.folder), stdout=output, stderr=subprocess.STDOUT
            )
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            wait_until(client.ping, 20, f"the soak's Redis answering on port {self.port}")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: every queue, message and signal it held is gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None


def _postgres_binary(name: str) -> str:
    """A PostgreSQL server binary: on PATH, else the newest under /usr/lib/postgresql."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise SystemExit(f"soak: {name} not found (PATH, /usr/lib/postgresql/*/bin)")
    return candidates[-1]


class OwnPostgres:
    """A PostgreSQL cluster of the soak's own (``initdb`` into ``folder``, trust auth, its
    unix socket in the folder too), restarted on demand."""

    def __init__(self) -> None:
        # a folder of its own under the temp dir: PostgreSQL's account must reach it
        self.folder = Path(tempfile.mkdtemp(prefix="waimai-soak-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._log = self.folder / "postgres.log"
        self._account: dict[str, Any] = {}
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            owner = pwd.getpwnam(POSTGRES_USER)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._account = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def _run(self, *command: str, timeout: float = 120) -> None:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, cwd=self.folder,
            **self._account,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(
                f"soak: {' '.join(command[:2])} failed (exit {done.returncode}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}\n{self.log_tail()}"
            )

    def create(self) -> None:
        """``initdb`` the cluster, listening on 127.0.0.1 only, and start it."""
        self._run(
            _postgres_binary("initdb"), "-D", str(self.data), "-U", POSTGRES_USER,
            "-A", "trust", "-E", "UTF8", "--no-instructions",
        )  # fmt: skip
        settings = (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.folder}'\nmax_connections = 100\n"
        )
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(settings)
        self.start()

    def _pg_ctl(self, *arguments: str) -> None:
        self._run(_postgres_binary("pg_ctl"), "-D", str(self.data), "-l", str(self._log),
                  "-w", "-t", "60", *arguments)  # fmt: skip

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        self._pg_ctl("start")
        wait_until(self._answers, 30, f"the soak's PostgreSQL answering on port {self.port}")

    def stop(self, mode: str) -> None:
        """Stop it: ``fast`` (clients cut off, a clean shutdown) or ``immediate`` (as a
        crash: recovery at the next start)."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str) -> None:
        """``pg_ctl restart -m MODE``: stop and start again at once."""
        self._pg_ctl("restart", "-m", mode)
        wait_until(self._answers, 30, f"the soak's PostgreSQL answering on port {self.port}")

    def _answers(self) -> bool:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user=POSTGRES_USER, dbname="postgres",
                connect_timeout=2,
            ) as connection:  # fmt: skip
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def destroy(self) -> None:
        """Stop it if it runs (as a crash: nothing is kept) and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except SystemExit as exc:
                print(exc, file=sys.stderr)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self) -> str:
        """The end of the server's log."""
        try:
            return self._log.read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            return ""

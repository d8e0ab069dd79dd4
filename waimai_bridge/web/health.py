"""``/healthz``: whether the database and the broker answer, checked cheaply.

One check runs at a time, its answer is reused for :data:`FRESH_S`, and a check that
takes longer than :data:`TIMEOUT_S` answers "unreachable" at once while it finishes in its
thread. So however often ``/healthz`` is called, it holds at most one of the web's threads.
"""

from __future__ import annotations

import asyncio
import time

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from waimai_bridge.runtime import Bridge

FRESH_S = 1.0
"""How long a check's answer is reused."""
TIMEOUT_S = 2.0
"""How long ``/healthz`` waits for a check."""


class HealthCheck:
    """The web app's health check of a bridge's database and broker."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._checking: asyncio.Task[dict[str, str]] | None = None
        self._answer: dict[str, str] | None = None
        self._answered_at = 0.0

    async def check(self) -> dict[str, str]:
        """``{"database": …, "broker": …}``, each ``"ok"`` or ``"unreachable: …"``."""
        if self._answer is not None and time.monotonic() - self._answered_at < FRESH_S:
            return self._answer
        loop = asyncio.get_running_loop()
        if self._checking is None or self._checking.get_loop() is not loop:
            self._checking = loop.create_task(self._run())
        try:
            return await asyncio.wait_for(asyncio.shield(self._checking), TIMEOUT_S)
        except TimeoutError:
            return {"database": "unreachable: no answer", "broker": "unreachable: no answer"}

    async def _run(self) -> dict[str, str]:
        try:
            answer = await run_in_threadpool(_checks, self._bridge)
            self._answer, self._answered_at = answer, time.monotonic()
            return answer
        finally:
            self._checking = None


def _checks(bridge: Bridge) -> dict[str, str]:
    checks = {}
    try:
        with bridge.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    broker = bridge.broker
    try:
        if isinstance(broker, RedisBroker):
            broker.client.ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}"
    return checks

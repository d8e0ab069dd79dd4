"""Pushes on their way to the inbox, written together (a group commit).

A push whose events must be written waits while the write before it is in flight, then
goes with every push that waited meanwhile: one statement and one commit for all of them.
At a low rate nothing waits; under load, the commit (the inbox's main cost) is shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool

from waimai_bridge.models import NativeEvent
from waimai_bridge.pipeline.actors import Pipeline

BATCH = 100
"""Pushes written in one statement, at most."""


@dataclass(frozen=True)
class _Waiting:
    events: Sequence[NativeEvent]
    received_at_ms: int
    written: asyncio.Future[None]


class Intake:
    """The web process's writer of pushes to the inbox (one per app)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._to_wake: set[int] = set()
        self._waker: asyncio.Task[None] | None = None

    async def write(self, events: Sequence[NativeEvent], *, received_at_ms: int) -> None:
        """Write a push's events to the inbox; returns once they are committed.

        Raises what the database raised when they could not be written.
        """
        waiting = _Waiting(events, received_at_ms, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if not _running(self._writer):
            self._writer = asyncio.create_task(self._write_waiting())
        await asyncio.shield(waiting.written)  # a client that hangs up does not stop the write

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            await self._write(batch)

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            _, shards = await run_in_threadpool(
                self._pipeline.store_pushes, [(w.events, w.received_at_ms) for w in batch]
            )
        except Exception as exc:
            if len(batch) > 1 and not _unreachable(exc):
                # one push the database refuses must not fail the others: each alone
                for waiting in batch:
                    await self._write([waiting])
                return
            for waiting in batch:
                if not waiting.written.done():
                    waiting.written.set_exception(exc)
            return
        for waiting in batch:
            if not waiting.written.done():
                waiting.written.set_result(None)
        # the ACKs need not wait for the workers' wake-up calls (what a failed one misses,
        # the sweeper sends): one call in flight at a time, for every shard waiting by then
        self._to_wake |= shards
        if self._to_wake and not _running(self._waker):
            self._waker = asyncio.create_task(self._wake_waiting())

    async def _wake_waiting(self) -> None:
        while self._to_wake:
            shards, self._to_wake = self._to_wake, set()
            await run_in_threadpool(self._pipeline.wake, *shards)


def _unreachable(exc: Exception) -> bool:
    """Whether the database itself failed (then every push of a batch would)."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def _running(task: asyncio.Task[None] | None) -> bool:
    """Whether ``task`` is still at work in this event loop (an app's loop may be replaced,
    as a test client does)."""
    return task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()

"""Pushes into the inbox (web → inbox): written together (a group commit), then their
shards woken.

A push whose events must be written waits while the write before it is in flight, then
goes with every push that waited meanwhile: one statement and one commit for all of them.
At a low rate nothing waits; under load, the commit (the inbox's main cost) is shared.

On PostgreSQL the write runs on the event loop, on a connection of the intake's own: a
thread would first have to win the GIL from the event loop, which holds it while it reads
requests (a few milliseconds at the median under load). A push whose store the plugin
could only infer needs a lookup first, and goes through a thread as on SQLite.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool

from waimai_bridge.metrics import INBOX_EVENTS
from waimai_bridge.models import NativeEvent
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.store import inbox
from waimai_bridge.store.database import CONNECT_TIMEOUT_SECONDS, STATEMENT_TIMEOUT

BATCH = 100
"""Pushes written in one statement, at most."""
WAKE_GATHER_S = 0.010
"""How long the shards to wake gather before each wake-up call (a thread and two Redis
round trips), so that fewer calls take the web's event loop from its requests; an event's
commit waits this much longer at most. On a shared broker a shard's events gather for
longer in any case (the workers take them ``GATHER_EVENTS_MS`` after the wake-up)."""


RETRY_AFTER_S = 1
"""What a push refused by a full intake is told to wait before it is sent again."""


class IntakeFull(Exception):
    """More pushes wait for the inbox than ``[bridge].intake_max_waiting``: this one is
    refused, to be sent again, rather than held in memory."""


Push = tuple[Sequence[NativeEvent], int]
"""A push's events, and when it was received (ms)."""


def write_pushes(pipeline: Pipeline, pushes: Sequence[Push]) -> tuple[int, set[int]]:
    """Write pushes to the inbox in one statement and one commit: how many of their events
    were new, and the shards to :meth:`~Pipeline.wake` for them."""
    with pipeline.database.connection() as connection:
        events = [event for push, _ in pushes for event in push]
        times = [received_at_ms for push, received_at_ms in pushes for _ in push]
        received = list(zip(inbox.with_known_stores(connection, events), times, strict=True))
        new = inbox.record(connection, received, shard_of=pipeline.shard_of)
    return _counted(pipeline, received, new)


def _counted(
    pipeline: Pipeline,
    received: Sequence[tuple[NativeEvent, int]],
    new: Sequence[inbox.Recorded],
) -> tuple[int, set[int]]:
    """Count events written to the inbox (``received``; ``new``: those that were not there
    yet): how many were new, and their shards."""
    counts = Counter((event.platform, event.native_code) for event, _ in received)
    fresh = Counter((row.platform, row.native_code) for row in new)
    for (platform, code), count in counts.items():
        kind = pipeline.kind_label(platform, code)
        INBOX_EVENTS.labels(platform, kind, "new").inc(fresh[platform, code])
        INBOX_EVENTS.labels(platform, kind, "duplicate").inc(count - fresh[platform, code])
    return len(new), {pipeline.shard_of(row.store_id) for row in new}


@dataclass(frozen=True)
class _Waiting:
    events: Sequence[NativeEvent]
    received_at_ms: int
    written: asyncio.Future[None]


class Intake:
    """The web process's writer of pushes to the inbox (one per app)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        database = pipeline.database
        self._connection = _Connection(database.url) if database.dialect == "postgresql" else None
        self._waiting: list[_Waiting] = []
        self._in_flight = 0
        self._max_waiting = pipeline.config.bridge.intake_max_waiting
        self._writer: asyncio.Task[None] | None = None
        self._to_wake: set[int] = set()
        self._waker: asyncio.Task[None] | None = None

    async def write(self, events: Sequence[NativeEvent], *, received_at_ms: int) -> None:
        """Write a push's events to the inbox; returns once they are committed.

        Raises :class:`IntakeFull` when too many pushes wait already, and what the
        database raised when they could not be written.
        """
        if self._in_flight >= self._max_waiting:
            raise IntakeFull(f"{self._in_flight} pushes wait for the inbox already")
        waiting = _Waiting(events, received_at_ms, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        self._in_flight += 1
        waiting.written.add_done_callback(self._done)
        if not _running(self._writer):
            self._writer = asyncio.create_task(self._write_waiting())
        await asyncio.shield(waiting.written)  # a client that hangs up does not stop the write

    def _done(self, _written: asyncio.Future[None]) -> None:
        self._in_flight -= 1

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            await self._write(batch)

    async def close(self) -> None:
        """Close the intake's own database connection, if it has one."""
        if self._connection is not None:
            await self._connection.close()

    async def _store(self, batch: list[_Waiting]) -> set[int]:
        """Write a batch's pushes to the inbox; the shards to wake."""
        pushes = [(waiting.events, waiting.received_at_ms) for waiting in batch]
        received = [(event, at_ms) for events, at_ms in pushes for event in events]
        if self._connection is None or any(event.store_inferred for event, _ in received):
            _, shards = await run_in_threadpool(write_pushes, self._pipeline, pushes)
            return shards
        new = await self._connection.run(
            inbox.record_async, received, shard_of=self._pipeline.shard_of
        )
        return _counted(self._pipeline, received, new)[1]

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            shards = await self._store(batch)
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
        # the sweeper sends): one call in flight at a time, for every shard waiting by the
        # end of its gathering
        self._to_wake |= shards
        if self._to_wake and not _running(self._waker):
            self._waker = asyncio.create_task(self._wake_waiting())

    async def _wake_waiting(self) -> None:
        while self._to_wake:
            await asyncio.sleep(WAKE_GATHER_S)
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


class _Connection:
    """An asynchronous PostgreSQL connection in autocommit mode, opened when first needed
    (again after a failure, or in another event loop); its errors are raised as
    SQLAlchemy's, as the rest of the bridge's database errors are."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        given = {key: value for key, value in parsed.query.items() if isinstance(value, str)}
        self._parameters: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            **parsed.translate_connect_args(username="user", database="dbname"),
            **given,
            "options": f"{STATEMENT_TIMEOUT} {given.get('options', '')}".strip(),
        }
        self._open: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, work: Any, *arguments: Any, **options: Any) -> Any:
        """``await work(connection, *arguments, **options)``."""
        try:
            return await work(await self._connection(), *arguments, **options)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                await self.close()
            raise DBAPIError.instance(
                None, None, exc, psycopg.Error, hide_parameters=True
            ) from None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        if self._open is not None and (self._open.closed or self._loop is not loop):
            self._open.pgconn.finish()  # its loop is gone: nothing can await its close
            self._open = None
        if self._open is None:
            self._open = await psycopg.AsyncConnection.connect(**self._parameters, autocommit=True)
            self._loop = loop
        return self._open

    async def close(self) -> None:
        """Close the connection, if one is open."""
        if self._open is not None:
            await self._open.close()
            self._open = None

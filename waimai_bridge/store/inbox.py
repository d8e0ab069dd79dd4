"""The inbox: every native event of an accepted push, durable before the ACK leaves.

A row is ``pending`` until a worker has applied it (``done``), or ``failed`` when the
platform's plugin cannot make sense of it: a poison event, parked with its error until a
person retries it. A duplicate push (same platform and idempotency key) adds no row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, NamedTuple, cast

import psycopg
from sqlalchemy import (
    Connection,
    Row,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from waimai_bridge.models import NativeEvent
from waimai_bridge.store.tables import InboxEvent, PlatformOrder
from waimai_bridge.store.upsert import insert_ignoring_conflict, recordset_insert

ERROR_LENGTH = 2000
_INBOX = cast(Table, InboxEvent.__table__)


class InboxStatus(StrEnum):
    """Where an inbox row stands."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


def record(
    connection: Session | Connection,
    received: Sequence[tuple[NativeEvent, int]],
    *,
    shard_of: Callable[[str], int],
) -> list[Recorded]:
    """Add the events not seen before (each given with when its push was received), each
    with its store's shard; ``(row id, platform, store id, native code)`` of each new row."""
    inserted = insert_ignoring_conflict(
        connection, InboxEvent, _rows(received, shard_of), returning=_RECORDED
    )
    return [Recorded(*row) for row in inserted]


async def record_async(
    connection: psycopg.AsyncConnection[Any],
    received: Sequence[tuple[NativeEvent, int]],
    *,
    shard_of: Callable[[str], int],
) -> list[Recorded]:
    """:func:`record` on an asynchronous PostgreSQL connection in autocommit mode."""
    statement, parameters = recordset_insert(
        InboxEvent, _rows(received, shard_of), returning=_RECORDED
    )
    cursor = await connection.execute(statement, parameters)
    return [Recorded(*row) for row in await cursor.fetchall()]


class Recorded(NamedTuple):
    """A new row of the inbox."""

    id: int
    platform: str
    store_id: str
    native_code: str


_RECORDED = (InboxEvent.id, InboxEvent.platform, InboxEvent.store_id, InboxEvent.native_code)


def _rows(
    received: Sequence[tuple[NativeEvent, int]], shard_of: Callable[[str], int]
) -> list[dict[str, Any]]:
    return [
        {
            "platform": event.platform,
            "idempotency_key": event.idempotency_key,
            "store_id": event.store_id,
            "store_inferred": event.store_inferred,
            "shard": shard_of(event.store_id),
            "platform_order_id": event.platform_order_id,
            "native_code": event.native_code,
            "platform_time_ms": event.platform_time_ms,
            "payload": event.payload,
            "received_at_ms": received_at_ms,
            "status": InboxStatus.PENDING,
            "attempts": 0,
            "enqueued_at_ms": received_at_ms,
        }
        for event, received_at_ms in received
    ]


def with_known_stores(
    connection: Session | Connection, events: Sequence[NativeEvent]
) -> Sequence[NativeEvent]:
    """The events, those whose store the plugin could only infer (``store_inferred``) given
    the store of their platform order when the bridge already knows the order."""
    inferred = {(e.platform, e.platform_order_id) for e in events if e.store_inferred}
    if not inferred:
        return events
    statement = select(
        PlatformOrder.platform, PlatformOrder.platform_order_id, PlatformOrder.store_id
    ).where(tuple_(PlatformOrder.platform, PlatformOrder.platform_order_id).in_(inferred))
    known = {(platform, order): store for platform, order, store in connection.execute(statement)}
    return [
        event.model_copy(update={"store_id": known[key]})
        if event.store_inferred and (key := (event.platform, event.platform_order_id)) in known
        else event
        for event in events
    ]


_TAKEN = {
    "status": InboxStatus.DONE,
    "attempts": _INBOX.c.attempts + 1,
    "error": None,
    "done_at_ms": bindparam("taken_at_ms"),
}
"""What taking a row writes: done, unless the worker parks it before its commit."""
_TAKE = (
    update(_INBOX)
    .where(
        _INBOX.c.id.in_(
            select(InboxEvent.id)
            .where(
                InboxEvent.status == InboxStatus.PENDING,
                InboxEvent.shard == bindparam("take_shard"),
            )
            .order_by(InboxEvent.id)
            .limit(bindparam("take_limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(_TAKEN)
    .returning(*_INBOX.c)
)
_TAKE_ONE = (
    update(_INBOX)
    .where(_INBOX.c.id == bindparam("take_id"), _INBOX.c.status == InboxStatus.PENDING)
    .values(_TAKEN)
    .returning(*_INBOX.c)
)


def take(
    session: Session, shard: int, *, limit: int, now_ms: int, row_id: int | None = None
) -> list[Row[Any]]:
    """Up to ``limit`` pending rows of ``shard``, oldest first, marked done as of ``now_ms``
    in the caller's transaction (one the worker cannot apply is then :func:`park`-ed);
    rows another worker holds are skipped (``SKIP LOCKED``). With ``row_id``, that row
    alone if it is still pending."""
    if row_id is not None:
        taken = session.connection().execute(_TAKE_ONE, {"take_id": row_id, "taken_at_ms": now_ms})
    else:
        taken = session.connection().execute(
            _TAKE, {"take_shard": shard, "take_limit": limit, "taken_at_ms": now_ms}
        )
    return sorted(taken, key=lambda row: int(row.id))


def native_event(row: Row[Any]) -> NativeEvent:
    """The native event an inbox row holds."""
    return NativeEvent(
        platform=row.platform,
        store_id=row.store_id,
        store_inferred=row.store_inferred,
        platform_order_id=row.platform_order_id,
        native_code=row.native_code,
        idempotency_key=row.idempotency_key,
        platform_time_ms=row.platform_time_ms,
        payload=row.payload,
    )


UNREAD = _INBOX.c.status == literal_column("'pending'")
"""The condition of a row not yet applied, its status a literal so that PostgreSQL matches
the partial index of pending events by platform order whatever plan it caches."""


def unread(session: Session, platform: str, platform_order_id: str) -> list[Row[Any]]:
    """The pending (not yet applied) rows of one platform order, oldest first."""
    statement = (
        select(_INBOX)
        .where(
            UNREAD,
            _INBOX.c.platform == platform,
            _INBOX.c.platform_order_id == platform_order_id,
        )
        .order_by(_INBOX.c.id)
    )
    return list(session.connection().execute(statement))


def first_unread(session: Session, orders: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """When the earliest pending event of each of these platform orders ``(platform,
    platform_order_id)`` that has one was received, by platform order."""
    if not orders:
        return {}
    statement = (
        select(_INBOX.c.platform, _INBOX.c.platform_order_id, func.min(_INBOX.c.received_at_ms))
        .where(UNREAD, tuple_(_INBOX.c.platform, _INBOX.c.platform_order_id).in_(orders))
        .group_by(_INBOX.c.platform, _INBOX.c.platform_order_id)
    )
    return {
        (platform, order_id): received
        for platform, order_id, received in session.connection().execute(statement)
    }


_APPLIED: dict[str, Any] = {"payload": {}}
"""What an applied row keeps of its payload: nothing, the event log holds it."""


def applied(session: Session, row_ids: Sequence[int]) -> None:
    """Taken rows whose events are now in the event log: their payloads are emptied, so
    that a payload is stored once."""
    if row_ids:
        session.execute(update(_INBOX).where(_INBOX.c.id.in_(row_ids)).values(_APPLIED))


def park(session: Session, row_id: int, error: str, now_ms: int) -> None:
    """A taken event cannot be applied as it is: park it with its error."""
    session.execute(
        update(_INBOX)
        .where(_INBOX.c.id == row_id)
        .values(status=InboxStatus.FAILED, error=error[:ERROR_LENGTH], done_at_ms=now_ms)
    )


def failed(session: Session, *, limit: int = 100) -> Sequence[InboxEvent]:
    """The parked events, oldest first."""
    statement = (
        select(InboxEvent)
        .where(InboxEvent.status == InboxStatus.FAILED)
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    return session.execute(statement).scalars().all()


def retry(session: Session, row_id: int, enqueued_at_ms: int) -> InboxEvent | None:
    """Put a parked event back in line, as sent at ``enqueued_at_ms`` (0: due for the next
    sweep); None when there is no failed row with that id."""
    row = session.get(InboxEvent, row_id, with_for_update=True)
    if row is None or row.status != InboxStatus.FAILED:
        return None
    row.status = InboxStatus.PENDING
    row.enqueued_at_ms = enqueued_at_ms
    row.done_at_ms = None
    return row


def stale(
    session: Session,
    *,
    enqueued_before_ms: int,
    now_ms: int,
    limit: int,
    shard_of: Callable[[str], int],
) -> dict[int, int]:
    """Pending rows last sent before ``enqueued_before_ms`` (their message was lost, or
    is still failing), marked as sent now and given their store's shard under the current
    shard count; how many of them each shard has."""
    statement = (
        select(InboxEvent)
        .where(
            InboxEvent.status == InboxStatus.PENDING, InboxEvent.enqueued_at_ms < enqueued_before_ms
        )
        .order_by(InboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    shards: dict[int, int] = {}
    for row in session.execute(statement).scalars():
        row.enqueued_at_ms = now_ms
        row.shard = shard_of(row.store_id)
        shards[row.shard] = shards.get(row.shard, 0) + 1
    return shards

"""Retention (SPEC §9): work already done, purged once it is older than its configured
age, in batches of a short transaction each.

Four kinds go: processed inbox rows (``done`` or ``discarded``; never ``pending`` or
``failed``), delivered subscriber updates (never pending or dead ones), the raw payloads of
logged events, emptied to ``{}`` while the events stay (the one copy of a payload once
its inbox row is applied), and the feed of order changes the board follows.
Orders, their event logs and everything waiting for a worker or a person are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from waimai_bridge.settings import RetentionSettings
from waimai_bridge.store.database import Database
from waimai_bridge.store.dead_letters import DISCARDED
from waimai_bridge.store.inbox import InboxStatus
from waimai_bridge.store.tables import (
    PAYLOAD_KEPT,
    Change,
    Delivery,
    InboxEvent,
    OrderEvent,
)

DAY_MS = 86_400_000
PROCESSED = (InboxStatus.DONE, DISCARDED)
"""The inbox statuses of events no worker or person will look at again."""

EMPTY: dict[str, Any] = {}
"""What an emptied payload holds."""

Progress = Callable[[str, int], None]
"""Told of each batch: its kind and how many rows it purged (or, dry, would purge)."""


@dataclass(frozen=True)
class Purged:
    """How many rows of each kind a purge removed (payloads: emptied), or would remove."""

    inbox: int = 0
    deliveries: int = 0
    payloads: int = 0
    changes: int = 0

    @property
    def total(self) -> int:
        """Rows of every kind."""
        return sum(count for _, count in self)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return ((field.name, getattr(self, field.name)) for field in fields(self))


@dataclass(frozen=True)
class Cutoffs:
    """Per kind, the time (epoch ms) before which its rows go; None: kept for ever."""

    inbox: int | None
    deliveries: int | None
    payloads: int | None
    changes: int | None

    @classmethod
    def of(cls, settings: RetentionSettings, now_ms: int) -> Cutoffs:
        """The cutoffs of the ``[retention]`` ages at ``now_ms``."""

        def cutoff(days: float) -> int | None:
            return None if days <= 0 else now_ms - int(days * DAY_MS)

        return cls(
            inbox=cutoff(settings.inbox_days),
            deliveries=cutoff(settings.deliveries_days),
            payloads=cutoff(settings.payloads_days),
            changes=cutoff(settings.changes_days),
        )

    def __iter__(self) -> Iterator[tuple[str, int | None]]:
        return ((field.name, getattr(self, field.name)) for field in fields(self))


def _old_inbox(cutoff_ms: int) -> tuple[Any, ...]:
    # a row is enqueued before it is done: the bound on enqueued_at_ms keeps the scan within
    # the (status, enqueued_at_ms) index, and can only keep a row longer
    return (
        InboxEvent.status.in_(PROCESSED),
        InboxEvent.enqueued_at_ms < cutoff_ms,
        InboxEvent.done_at_ms < cutoff_ms,
    )


def _old_deliveries(cutoff_ms: int) -> tuple[Any, ...]:
    # a delivered row's next_attempt_at_ms is when it was taken plus the lease: the same
    # kind of bound, within the (status, next_attempt_at_ms) index
    return (
        Delivery.status == "done",
        Delivery.next_attempt_at_ms < cutoff_ms,
        Delivery.delivered_at_ms < cutoff_ms,
    )


def _old_payloads(cutoff_ms: int) -> tuple[Any, ...]:
    return (text(PAYLOAD_KEPT), OrderEvent.received_at_ms < cutoff_ms)


def _old_changes(cutoff_ms: int) -> tuple[Any, ...]:
    return (Change.created_at_ms < cutoff_ms,)


def purge_inbox(session: Session, cutoff_ms: int, limit: int) -> int:
    """Delete up to ``limit`` processed inbox rows done before ``cutoff_ms``; how many."""
    batch = select(InboxEvent.id).where(*_old_inbox(cutoff_ms)).limit(limit)
    deleted = session.execute(
        delete(InboxEvent).where(InboxEvent.id.in_(batch), *_old_inbox(cutoff_ms))
    )
    return int(getattr(deleted, "rowcount", 0))


def purge_deliveries(session: Session, cutoff_ms: int, limit: int) -> int:
    """Delete up to ``limit`` subscriber updates delivered before ``cutoff_ms``; how many."""
    batch = select(Delivery.id).where(*_old_deliveries(cutoff_ms)).limit(limit)
    deleted = session.execute(
        delete(Delivery).where(Delivery.id.in_(batch), *_old_deliveries(cutoff_ms))
    )
    return int(getattr(deleted, "rowcount", 0))


def purge_payloads(session: Session, cutoff_ms: int, limit: int) -> int:
    """Empty the payloads of up to ``limit`` events received before ``cutoff_ms``; how many."""
    batch = (
        select(OrderEvent.id)
        .where(*_old_payloads(cutoff_ms))
        .order_by(OrderEvent.received_at_ms)
        .limit(limit)
    )
    ids = session.execute(batch).scalars().all()
    if ids:
        session.execute(update(OrderEvent).where(OrderEvent.id.in_(ids)).values(payload=EMPTY))
    return len(ids)


def purge_changes(session: Session, cutoff_ms: int, limit: int) -> int:
    """Delete up to ``limit`` changes of the board's feed noted before ``cutoff_ms``."""
    batch = select(Change.id).where(*_old_changes(cutoff_ms)).limit(limit)
    deleted = session.execute(delete(Change).where(Change.id.in_(batch)))
    return int(getattr(deleted, "rowcount", 0))


def count_purgeable(session: Session, kind: str, cutoff_ms: int) -> int:
    """How many rows of ``kind`` a purge at ``cutoff_ms`` would remove (payloads: empty)."""
    table, where = {
        "inbox": (InboxEvent, _old_inbox),
        "deliveries": (Delivery, _old_deliveries),
        "payloads": (OrderEvent, _old_payloads),
        "changes": (Change, _old_changes),
    }[kind]
    statement = select(func.count()).select_from(table).where(*where(cutoff_ms))
    return int(session.execute(statement).scalar_one())


_PURGE: dict[str, Callable[[Session, int, int], int]] = {
    "inbox": purge_inbox,
    "deliveries": purge_deliveries,
    "payloads": purge_payloads,
    "changes": purge_changes,
}


def purge(
    database: Database,
    cutoffs: Cutoffs,
    *,
    batch_size: int,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Purged:
    """Purge every kind with a cutoff, ``batch_size`` rows a transaction, until none is
    left (``dry_run``: count them and change nothing)."""
    counts: dict[str, int] = {}
    for kind, cutoff_ms in cutoffs:
        counts[kind] = 0
        if cutoff_ms is None:
            continue
        if dry_run:
            with database.transaction() as session:
                counts[kind] = count_purgeable(session, kind, cutoff_ms)
            if progress is not None:
                progress(kind, counts[kind])
            continue
        while True:
            with database.transaction() as session:
                done = _PURGE[kind](session, cutoff_ms, batch_size)
            counts[kind] += done
            if progress is not None:
                progress(kind, done)
            if done < batch_size:
                break
    return Purged(**counts)

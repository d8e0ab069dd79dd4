"""The feed of committed order changes (state, an action's outcome, an anomaly), written in
the transaction of the change: what the order board follows, by id, with no poll per
viewer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from waimai_bridge.store.tables import Change

ORDER = "order"
ACTION = "action"
ANOMALY = "anomaly"


@dataclass(frozen=True)
class Changed:
    """A platform order that changed, and how (``kind``: order, action, anomaly)."""

    platform: str
    platform_order_id: str
    store_id: str
    order_id: int | None
    kind: str


@dataclass(frozen=True)
class Noted:
    """A change as the feed holds it."""

    id: int
    platform: str
    platform_order_id: str
    store_id: str
    order_id: int | None
    kind: str
    created_at_ms: int


def note(session: Session, changed: Iterable[Changed], now_ms: int) -> None:
    """Add these changes to the feed."""
    rows = [
        {"platform": c.platform, "platform_order_id": c.platform_order_id,
         "store_id": c.store_id, "order_id": c.order_id, "kind": c.kind, "created_at_ms": now_ms}
        for c in changed
    ]  # fmt: skip
    if rows:
        session.execute(insert(Change), rows)


def since(
    session: Session, after_id: int, *, store_id: str | None = None, limit: int = 500
) -> list[Noted]:
    """The changes after ``after_id`` (of one store, if given), oldest first."""
    statement = select(
        Change.id, Change.platform, Change.platform_order_id, Change.store_id,
        Change.order_id, Change.kind, Change.created_at_ms,
    ).where(Change.id > after_id)  # fmt: skip
    if store_id is not None:
        statement = statement.where(Change.store_id == store_id)
    return [Noted(*row) for row in session.execute(statement.order_by(Change.id).limit(limit))]


def last_id(session: Session) -> int:
    """The id of the newest change (0 when there is none)."""
    return session.scalar(select(func.max(Change.id))) or 0


def changed_orders(rows: Sequence[Noted]) -> list[tuple[str, str]]:
    """The (platform, platform order id) of the changes, each once, in the order of their
    last change."""
    last: dict[tuple[str, str], int] = {}
    for row in rows:
        last[row.platform, row.platform_order_id] = row.id
    return sorted(last, key=last.__getitem__)

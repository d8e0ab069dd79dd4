"""What pull compensation keeps: where each store's next pull starts, and which orders want
reading again from their platform."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.orm import Session

from waimai_bridge.models import OrderState
from waimai_bridge.store.tables import Order, PlatformOrder, PullCursor

SETTLED = (OrderState.COMPLETED, OrderState.REFUNDED, OrderState.CANCELLED)
"""Order states that wait for nothing more (a partially refunded order may be refunded
again, so it is not among them)."""


def pull_since(session: Session, platform: str, store_id: str) -> int:
    """Where the next pull of a store starts: the start of the last successful one, or 0."""
    cursor = session.get(PullCursor, (platform, store_id))
    return 0 if cursor is None else cursor.since_ms


def pulled(session: Session, platform: str, store_id: str, *, since_ms: int, now_ms: int) -> None:
    """Record a successful pull of a store: the next one starts at ``since_ms``."""
    cursor = session.get(PullCursor, (platform, store_id), with_for_update=True)
    if cursor is None:
        session.add(
            PullCursor(platform=platform, store_id=store_id, since_ms=since_ms, pulled_at_ms=now_ms)
        )
    else:
        cursor.since_ms, cursor.pulled_at_ms = max(cursor.since_ms, since_ms), now_ms


_NO_PRICE = func.coalesce(cast(PlatformOrder.price, Text), "null") == "null"
"""No price breakdown: SQL NULL or JSON null, as the dialect stored it."""


@dataclass(frozen=True)
class Refetch:
    """An order to read again from its platform, and why."""

    id: int
    platform: str
    store_id: str
    platform_order_id: str
    why: str
    """``"no order"``: seen without the full order (no items, no prices); ``"stuck"``: not
    settled and not changed for long."""


def refetch_due(
    session: Session, platforms: Collection[str], *, missing_before_ms: int,
    stuck_before_ms: int, fetched_before_ms: int, limit: int,
) -> list[Refetch]:  # fmt: skip
    """Orders of ``platforms`` to read again, not read since ``fetched_before_ms``: those
    first seen before ``missing_before_ms`` without their full order, then those not settled
    (stored or still waiting to be) and last changed before ``stuck_before_ms``; ``limit``
    at most."""
    if not platforms:
        return []
    not_lately = or_(
        PlatformOrder.fetched_at_ms.is_(None), PlatformOrder.fetched_at_ms < fetched_before_ms
    )
    mine = PlatformOrder.platform.in_(platforms)
    columns = (
        PlatformOrder.id, PlatformOrder.platform, PlatformOrder.store_id,
        PlatformOrder.platform_order_id,
    )  # fmt: skip
    missing = session.execute(
        select(*columns)
        .where(mine, not_lately, _NO_PRICE, ~PlatformOrder.discarded)
        .where(PlatformOrder.created_at_ms < missing_before_ms)
        .order_by(PlatformOrder.id)
        .limit(limit)
    ).all()
    found = [Refetch(*row, why="no order") for row in missing]
    if len(found) < limit:
        changed = func.coalesce(Order.updated_at_ms, PlatformOrder.updated_at_ms)
        unsettled = or_(
            (PlatformOrder.order_id.is_(None)) & ~PlatformOrder.discarded,
            Order.state.not_in([state.value for state in SETTLED]),
        )
        seen = {row.id for row in found}
        stuck = session.execute(
            select(*columns)
            .outerjoin(Order, Order.id == PlatformOrder.order_id)
            .where(mine, not_lately, unsettled, changed < stuck_before_ms)
            .order_by(changed)
            .limit(limit)
        ).all()
        found += [Refetch(*row, why="stuck") for row in stuck if row.id not in seen]
    return found[:limit]


def fetched(session: Session, ids: Sequence[int], *, now_ms: int) -> None:
    """Record that these platform orders were read from their platform now."""
    if ids:
        session.execute(
            update(PlatformOrder).where(PlatformOrder.id.in_(ids)).values(fetched_at_ms=now_ms)
        )

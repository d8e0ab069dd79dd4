"""A store's channels (its platforms): whether the bridge accepts their new orders itself,
as set through the API over the config's default."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from waimai_bridge.models import PlatformState
from waimai_bridge.store.tables import OutboundAction, PlatformOrder, StoreChannel

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Channel:
    """A store's channel: whether it auto-accepts, and whether that was ``set`` through the
    API (else it is the config's default)."""

    platform: str
    auto_accept: bool
    set: bool


def chosen(session: Session, store_ids: Collection[str]) -> dict[tuple[str, str], bool]:
    """The auto-accept set for the channels of these stores, by (store, platform); a channel
    never set is absent."""
    if not store_ids:
        return {}
    statement = select(StoreChannel.store_id, StoreChannel.platform, StoreChannel.auto_accept)
    rows = session.execute(statement.where(StoreChannel.store_id.in_(sorted(store_ids))))
    return {(store_id, platform): bool(value) for store_id, platform, value in rows}


def auto_accepts(session: Session, store_id: str, platform: str, default: bool) -> bool:
    """Whether the bridge accepts the store's new orders of ``platform`` itself."""
    value = session.get(StoreChannel, (store_id, platform))
    return default if value is None else bool(value.auto_accept)


def set_auto_accept(
    session: Session, store_id: str, platform: str, auto_accept: bool, *, now_ms: int
) -> None:
    """Set whether the bridge accepts the store's new orders of ``platform`` itself."""
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:
        raise NotImplementedError(f"database {dialect!r} is not supported: {', '.join(_INSERTS)}")
    values = {"auto_accept": auto_accept, "updated_at_ms": now_ms}
    key = {"store_id": store_id, "platform": platform}
    insert = _INSERTS[dialect](StoreChannel).values(**key, **values)
    session.execute(insert.on_conflict_do_nothing())
    session.execute(update(StoreChannel).filter_by(**key).values(**values))


def listing(
    session: Session, store_id: str, platforms: Iterable[str], default: bool
) -> list[Channel]:
    """The store's channels on ``platforms`` (in name order), each set or the default."""
    found = chosen(session, [store_id])
    return [
        Channel(platform, found.get((store_id, platform), default), (store_id, platform) in found)
        for platform in sorted(platforms)
    ]


def unconfirmed(
    session: Session, platforms: Collection[str], *, created_after_ms: int,
    created_before_ms: int, limit: int,
) -> list[tuple[str, str, str]]:  # fmt: skip
    """New orders of ``platforms`` first seen between the two times that nobody accepted
    and no ``confirm`` was asked of: ``(platform, platform order id, store id)``."""
    if not platforms:
        return []
    asked = exists().where(
        OutboundAction.platform == PlatformOrder.platform,
        OutboundAction.platform_order_id == PlatformOrder.platform_order_id,
        OutboundAction.action == "confirm",
    )
    statement = (
        select(PlatformOrder.platform, PlatformOrder.platform_order_id, PlatformOrder.store_id)
        .where(
            PlatformOrder.platform.in_(sorted(platforms)),
            PlatformOrder.created_at_ms > created_after_ms,
            PlatformOrder.created_at_ms < created_before_ms,
            PlatformOrder.order_id.is_(None),
            PlatformOrder.discarded.is_(False),
            PlatformOrder.hold_started_at_ms.is_(None),
            PlatformOrder.state_code == int(PlatformState.CREATED),
            ~asked,
        )
        .order_by(PlatformOrder.created_at_ms)
        .limit(limit)
    )
    return [(platform, order, store) for platform, order, store in session.execute(statement)]

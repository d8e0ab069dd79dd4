"""Subscriptions (seed 001): who wants which order updates — created, listed, deleted, and
chosen for an update by their store, platform and state filters."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from waimai_bridge.store.tables import Delivery, Subscription


def subscribe(
    session: Session,
    *,
    url: str,
    secret: str,
    store_ids: Sequence[str] | None,
    platforms: Sequence[str] | None,
    states: Sequence[str] | None,
    now_ms: int,
) -> Subscription:
    """A new subscription."""
    row = Subscription(
        url=url, secret=secret, created_at_ms=now_ms,
        store_ids=list(store_ids) if store_ids else None,
        platforms=list(platforms) if platforms else None,
        states=list(states) if states else None,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def unsubscribe(session: Session, subscription_id: int) -> bool:
    """Delete a subscription and its undelivered updates; False if there is none."""
    session.execute(delete(Delivery).where(Delivery.subscription_id == subscription_id))
    deleted = session.execute(delete(Subscription).where(Subscription.id == subscription_id))
    return bool(getattr(deleted, "rowcount", 0))


_SUBSCRIPTIONS = select(Subscription).order_by(Subscription.id)
_FILTERS = select(
    Subscription.id, Subscription.store_ids, Subscription.platforms, Subscription.states
).order_by(Subscription.id)
"""What choosing the subscriptions of an update needs (read on every transaction that
writes one)."""
FILTERS = "waimai.subscriptions"
"""``session.info`` key: the subscriptions' filters, read once per transaction."""


def subscriptions(session: Session) -> Sequence[Subscription]:
    """Every subscription, oldest first."""
    return session.execute(_SUBSCRIPTIONS).scalars().all()


def wanting(session: Session, *, store_id: str, platform: str, state: str | None) -> list[int]:
    """The ids of the subscriptions that want an update of a ``platform`` order of
    ``store_id`` (``state``: the order's new state; None for an update that has none,
    which every state filter lets through)."""
    if FILTERS not in session.info:
        # not through the ORM: the caller's pending changes go with the commit, once
        session.info[FILTERS] = session.connection().execute(_FILTERS).all()
    return [
        subscription_id
        for subscription_id, store_ids, platforms, states in session.info[FILTERS]
        if (not store_ids or store_id in store_ids)
        and (not platforms or platform in platforms)
        and (not states or state is None or state in states)
    ]

"""The outbox (seed 001): the updates due to subscribers, written with the change they tell
of, and their delivery state.

Every order state change and every action outcome is written here, one delivery per
matching subscription, in the same transaction as the change itself — so an update is
sent if and only if the change was committed, and that commit is durable (a database
crash cannot take back a change a subscriber was told of). A worker then POSTs the due
deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from waimai_bridge.store.database import require_durable
from waimai_bridge.store.subscriptions import wanting
from waimai_bridge.store.tables import Delivery, OutboundAction, Subscription

WRITTEN = "waimai.deliveries_written"
"""``session.info`` key: how many deliveries the transaction wrote."""

ORDER_STATUS = "order.status"
ACTION_OUTCOME = "action.outcome"
ANOMALY_OPENED = "anomaly.opened"
ANOMALY_RESOLVED = "anomaly.resolved"


def order_update(
    session: Session,
    *,
    order_id: int,
    platform: str,
    store_id: str,
    status: str,
    previous_status: str | None,
    rider_state: str | None,
    version: int,
    now_ms: int,
) -> None:
    """Write an ``OrderStatusUpdate`` for every subscription that wants it."""
    body = {
        "type": ORDER_STATUS, "orderId": order_id, "status": status,
        "previousStatus": previous_status, "riderState": rider_state, "platform": platform,
        "storeId": store_id, "version": version, "timestamp": now_ms,
    }  # fmt: skip
    _write(session, body, order_id=order_id, store_id=store_id, platform=platform,
           state=status, now_ms=now_ms)  # fmt: skip


def action_outcome(session: Session, action: OutboundAction, now_ms: int) -> None:
    """Write an action's outcome (done or failed) for every subscription that wants it."""
    body = {
        "type": ACTION_OUTCOME, "actionId": action.id, "action": action.action,
        "orderId": action.order_id, "platform": action.platform,
        "platformOrderId": action.platform_order_id, "storeId": action.store_id,
        "status": action.status, "attempts": action.attempts,
        "result": {"code": action.result_code, "message": action.result_message},
        "timestamp": now_ms,
    }  # fmt: skip
    _write(session, body, order_id=action.order_id, store_id=action.store_id,
           platform=action.platform, state=None, now_ms=now_ms)  # fmt: skip


def anomaly_change(
    session: Session, *, anomaly_id: int, rule: str, detail: str, order_id: int | None,
    platform: str, platform_order_id: str | None, store_id: str, opened_at_ms: int,
    resolved_at_ms: int | None, now_ms: int,
) -> None:  # fmt: skip
    """Write an anomaly's opening (``resolved_at_ms`` None) or resolution for every
    subscription that wants it."""
    body = {
        "type": ANOMALY_OPENED if resolved_at_ms is None else ANOMALY_RESOLVED,
        "anomalyId": anomaly_id, "rule": rule, "detail": detail, "orderId": order_id,
        "platform": platform, "platformOrderId": platform_order_id, "storeId": store_id,
        "openedAt": opened_at_ms, "resolvedAt": resolved_at_ms, "timestamp": now_ms,
    }  # fmt: skip
    _write(session, body, order_id=order_id, store_id=store_id, platform=platform,
           state=None, now_ms=now_ms)  # fmt: skip


def _write(
    session: Session, body: dict[str, Any], *, order_id: int | None, store_id: str,
    platform: str, state: str | None, now_ms: int,
) -> None:  # fmt: skip
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    fresh = {
        "order_id": order_id, "kind": body["type"], "body": text, "status": "pending",
        "attempts": 0, "next_attempt_at_ms": now_ms, "last_error": None,
        "created_at_ms": now_ms, "delivered_at_ms": None,
    }  # fmt: skip
    rows = [
        {"subscription_id": subscription_id, **fresh}
        for subscription_id in wanting(session, store_id=store_id, platform=platform, state=state)
    ]
    if rows:
        require_durable(session)  # a crash must not take back what a subscriber is told
        session.execute(insert(Delivery), rows)
        session.info[WRITTEN] = session.info.get(WRITTEN, 0) + len(rows)


def due_subscriptions(session: Session, *, now_ms: int, limit: int) -> list[int]:
    """The subscriptions with updates due, the one whose earliest has waited longest first."""
    earliest = func.min(Delivery.next_attempt_at_ms)
    statement = (
        select(Delivery.subscription_id)
        .where(Delivery.status == "pending", Delivery.next_attempt_at_ms <= now_ms)
        .group_by(Delivery.subscription_id)
        .order_by(earliest, Delivery.subscription_id)
        .limit(limit)
    )
    return list(session.execute(statement).scalars())


def take_due(
    session: Session, *, now_ms: int, lease_ms: int, limit: int, subscription_id: int | None = None
) -> list[Delivery]:
    """Due pending deliveries (of one subscription, if given; rows other workers hold are
    skipped), leased for ``lease_ms``: another worker will not take them again before that."""
    statement = select(Delivery).where(
        Delivery.status == "pending", Delivery.next_attempt_at_ms <= now_ms
    )
    if subscription_id is not None:
        statement = statement.where(Delivery.subscription_id == subscription_id)
    statement = (
        statement.order_by(Delivery.next_attempt_at_ms, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.execute(statement).scalars())
    for row in rows:
        row.next_attempt_at_ms = now_ms + lease_ms
    return rows


def secrets(session: Session, subscription_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Subscription id → (url, secret)."""
    statement = select(Subscription.id, Subscription.url, Subscription.secret).where(
        Subscription.id.in_(subscription_ids)
    )
    return {row_id: (url, secret) for row_id, url, secret in session.execute(statement)}


def delivered(session: Session, delivery_id: int, *, now_ms: int) -> None:
    """The subscriber took the update."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status="done", delivered_at_ms=now_ms, attempts=Delivery.attempts + 1,
                last_error=None)
    )  # fmt: skip


def not_delivered(
    session: Session, delivery: Delivery, error: str, *, now_ms: int, first_retry_ms: int,
    give_up_ms: int,
) -> int | None:  # fmt: skip
    """The subscriber failed: try again after an exponential backoff (doubling from
    ``first_retry_ms``, at most 5 minutes), or mark the delivery dead once it has been
    tried for ``give_up_ms``. Returns when to try again, or None when dead."""
    attempts = delivery.attempts + 1
    if now_ms - delivery.created_at_ms >= give_up_ms:
        values: dict[str, Any] = {"status": "dead"}
        again = None
    else:
        again = now_ms + min(first_retry_ms * 2 ** (attempts - 1), MAX_BACKOFF_MS)
        values = {"next_attempt_at_ms": again}
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id)
        .values(attempts=attempts, last_error=error[:1000], **values)
    )
    return again


MAX_BACKOFF_MS = 300_000


def put_back(
    session: Session, delivery_ids: Sequence[int], reason: str, *, at_ms: int, now_ms: int,
    give_up_ms: int,
) -> int:  # fmt: skip
    """Deliveries taken but not POSTed: due again at ``at_ms``, or dead if written
    ``give_up_ms`` ago or more (never tried, they are given up on all the same; ``reason``
    is kept as the error of one that has none). Returns how many died."""
    if not delivery_ids:
        return 0
    taken = (Delivery.id.in_(delivery_ids), Delivery.status == "pending")
    died = session.execute(
        update(Delivery)
        .where(*taken, Delivery.created_at_ms <= now_ms - give_up_ms)
        .values(status="dead", last_error=func.coalesce(Delivery.last_error, reason[:1000]))
    )
    session.execute(update(Delivery).where(*taken).values(next_attempt_at_ms=at_ms))
    return int(getattr(died, "rowcount", 0))


def next_due_ms(session: Session) -> int | None:
    """When the earliest pending delivery is due."""
    statement = select(func.min(Delivery.next_attempt_at_ms)).where(Delivery.status == "pending")
    return session.execute(statement).scalar_one_or_none()


def dead(session: Session, *, limit: int = 100) -> Sequence[Delivery]:
    """Deliveries given up on, newest first."""
    statement = (
        select(Delivery).where(Delivery.status == "dead").order_by(Delivery.id.desc()).limit(limit)
    )
    return session.execute(statement).scalars().all()

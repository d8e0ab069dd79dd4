"""Outbound actions: asked once per idempotency key, tried under a lock, never called twice
when nobody knows whether the first call reached the platform.

Each function runs inside the caller's transaction. A worker :func:`claim`\\ s an attempt
(committed before the platform is called), calls the platform outside any transaction,
then :func:`record`\\ s the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai_bridge.models import Action, ActionOutcome, ActionRequest, ActionResult
from waimai_bridge.store import outbox
from waimai_bridge.store.tables import OutboundAction, PlatformOrder

UNKNOWN_OUTCOME = "OUTCOME_UNKNOWN"
"""The result code of an action whose worker stopped during the platform call."""


class ActionStatus(StrEnum):
    """Where an outbound action stands."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class KeyConflict(Exception):
    """The idempotency key is already used by another order or action."""


@dataclass(frozen=True)
class Asked:
    """What :func:`ask` did: the action, and whether this call created it."""

    action: OutboundAction
    created: bool


def ask(
    session: Session,
    *,
    key: str,
    action: Action,
    platform_order: PlatformOrder,
    reason: str | None,
    attempt_limit: int,
    now_ms: int,
) -> Asked:
    """The action with idempotency key ``key``, created pending if it is new.

    :raises KeyConflict: the key names an action of another order or kind.
    """
    existing = by_key(session, key)
    if existing is None:
        row = OutboundAction(
            idempotency_key=key, action=action.value, platform=platform_order.platform,
            platform_order_id=platform_order.platform_order_id,
            store_id=platform_order.store_id, order_id=platform_order.order_id, reason=reason,
            status=ActionStatus.PENDING, attempts=0, attempt_limit=attempt_limit,
            next_attempt_at_ms=now_ms, in_flight_since_ms=None, result_code=None,
            result_message=None, created_at_ms=now_ms, updated_at_ms=now_ms,
        )  # fmt: skip
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # the same key, asked at the same moment elsewhere
            existing = by_key(session, key)
            if existing is None:
                raise
        else:
            return Asked(row, created=True)
    same = (existing.platform, existing.platform_order_id, existing.action) == (
        platform_order.platform, platform_order.platform_order_id, action.value,
    )  # fmt: skip
    if not same:
        raise KeyConflict(
            f"idempotency key {key!r} is already action {existing.id} ({existing.action} "
            f"of {existing.platform} order {existing.platform_order_id})"
        )
    return Asked(existing, created=False)


def by_key(session: Session, key: str) -> OutboundAction | None:
    """The action with this idempotency key."""
    statement = select(OutboundAction).where(OutboundAction.idempotency_key == key)
    return session.execute(statement).scalar_one_or_none()


class Step(StrEnum):
    """What a worker holding an action's message does next."""

    CALL = "call"
    NOTHING = "nothing"
    LATER = "later"


@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim`: call the platform with ``request``, do nothing, or
    come back at ``at_ms``."""

    step: Step
    request: ActionRequest | None = None
    at_ms: int | None = None
    """For ``LATER``: when the action is due. For ``CALL``: when the attempt started,
    which :func:`record` must be given back."""


def claim(session: Session, action_id: int, *, now_ms: int, in_flight_timeout_ms: int) -> Claim:
    """Start the next attempt of a pending, due action (the caller commits before calling
    the platform).

    An action already in flight is left alone while its worker may still answer; once
    that is past ``in_flight_timeout_ms`` it fails as :data:`UNKNOWN_OUTCOME` instead of
    being called again.
    """
    row = session.get(OutboundAction, action_id, with_for_update=True)
    if row is None or row.status != ActionStatus.PENDING:
        return Claim(Step.NOTHING)
    if row.in_flight_since_ms is not None:
        if now_ms - row.in_flight_since_ms < in_flight_timeout_ms:
            return Claim(Step.NOTHING)
        _finish(
            session, row, ActionStatus.FAILED, UNKNOWN_OUTCOME,
            "the worker stopped during the platform call, so whether the platform did it is "
            "unknown; check on the platform, then retry by hand if it did not",
            now_ms,
        )  # fmt: skip
        return Claim(Step.NOTHING)
    if row.next_attempt_at_ms > now_ms:
        return Claim(Step.LATER, at_ms=row.next_attempt_at_ms)
    row.attempts += 1
    row.in_flight_since_ms = now_ms
    row.updated_at_ms = now_ms
    request = ActionRequest(
        action_id=str(row.id), action=Action(row.action),
        platform_order_id=row.platform_order_id, store_id=row.store_id, reason=row.reason,
        attempt=row.attempts,
    )  # fmt: skip
    return Claim(Step.CALL, request=request, at_ms=now_ms)


def record(
    session: Session, action_id: int, result: ActionResult, *, started_ms: int, now_ms: int,
    retry_delay_ms: int,
) -> OutboundAction | None:  # fmt: skip
    """Keep the platform's answer to the attempt that started at ``started_ms``: done,
    failed, or pending again after ``retry_delay_ms`` (a transient failure with tries
    left). None when that attempt is no longer in flight (it was given up meanwhile)."""
    row = session.get(OutboundAction, action_id, with_for_update=True)
    if row is None or row.status != ActionStatus.PENDING or row.in_flight_since_ms != started_ms:
        return None
    if result.outcome is ActionOutcome.DONE:
        _finish(session, row, ActionStatus.DONE, result.code, result.message, now_ms)
    elif result.outcome is ActionOutcome.REJECTED or row.attempts >= row.attempt_limit:
        _finish(session, row, ActionStatus.FAILED, result.code, result.message, now_ms)
    else:
        row.in_flight_since_ms = None
        row.result_code, row.result_message = result.code, result.message
        row.next_attempt_at_ms = now_ms + retry_delay_ms
        row.updated_at_ms = now_ms
    return row


def retry(session: Session, action_id: int, *, tries: int, now_ms: int) -> OutboundAction | None:
    """Put a failed action back in line with ``tries`` more tries; None if no failed action
    has that id."""
    row = session.get(OutboundAction, action_id, with_for_update=True)
    if row is None or row.status != ActionStatus.FAILED:
        return None
    row.status = ActionStatus.PENDING
    row.attempt_limit = row.attempts + tries
    row.next_attempt_at_ms = now_ms
    row.in_flight_since_ms = None
    row.updated_at_ms = now_ms
    return row


def listing(
    session: Session, *, status: ActionStatus | None = None, limit: int = 100
) -> Sequence[OutboundAction]:
    """Actions, newest first, of one status or all."""
    statement = select(OutboundAction).order_by(OutboundAction.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(OutboundAction.status == status)
    return session.execute(statement).scalars().all()


def stale(
    session: Session, *, due_before_ms: int, in_flight_before_ms: int, limit: int
) -> list[tuple[int, str]]:
    """Pending actions whose message may be lost: due long ago and not in flight, or in
    flight for too long. ``(id, store_id)`` of each."""
    statement = (
        select(OutboundAction.id, OutboundAction.store_id)
        .where(
            OutboundAction.status == ActionStatus.PENDING,
            OutboundAction.next_attempt_at_ms < due_before_ms,
            (OutboundAction.in_flight_since_ms.is_(None))
            | (OutboundAction.in_flight_since_ms < in_flight_before_ms),
        )
        .order_by(OutboundAction.next_attempt_at_ms)
        .limit(limit)
    )
    return [(action_id, store_id) for action_id, store_id in session.execute(statement)]


def _finish(
    session: Session, row: OutboundAction, status: ActionStatus, code: str | None,
    message: str | None, now: int,
) -> None:  # fmt: skip
    """End an action, and tell the subscribers (its outcome is an update of the order)."""
    row.status = status
    row.in_flight_since_ms = None
    row.result_code, row.result_message = code, message
    row.updated_at_ms = now
    outbox.action_outcome(session, row, now)

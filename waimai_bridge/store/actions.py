"""Outbound actions: one per idempotency key, and one of a kind per order and request,
each attempt claimed under a lock before the platform is called.

Each function runs inside the caller's transaction. A worker :func:`claim`\\ s an attempt
(committed before the platform is called), calls the platform outside any transaction,
then :func:`record`\\ s the answer. An attempt whose worker died is tried again while
tries are left: plugins answer a repeat the platform already did as ``done`` (SPEC §4.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waimai_bridge.models import Action, ActionOutcome, ActionRequest, ActionResult
from waimai_bridge.store import changes, outbox
from waimai_bridge.store.inbox import UNREAD
from waimai_bridge.store.order_log import Locked
from waimai_bridge.store.tables import InboxEvent, OutboundAction, PlatformOrder
from waimai_bridge.store.upsert import insert_ignoring_conflict

UNKNOWN_OUTCOME = "OUTCOME_UNKNOWN"
"""The result code of an attempt whose worker stopped during the platform call."""


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
    platform_order: Locked,
    request_key: str | None,
    reason: str | None,
    attempt_limit: int,
    now_ms: int,
    before_creating: Callable[[], None] | None = None,
) -> Asked:
    """The :func:`existing` action of this ask, or a new pending one (``before_creating``,
    called first, may refuse it by raising).

    The caller holds the platform order's row lock, so two asks of one order never both
    create an action of the same kind.

    :raises KeyConflict: the key names an action of another order or kind.
    """
    found = existing(
        session, key=key, action=action, platform_order=platform_order, request_key=request_key
    )
    if found is not None:
        return Asked(found, created=False)
    if before_creating is not None:
        before_creating()
    row = OutboundAction(
        idempotency_key=key, action=action.value, platform=platform_order.platform,
        platform_order_id=platform_order.platform_order_id, store_id=platform_order.store_id,
        order_id=platform_order.order_id, request_key=request_key, reason=reason,
        status=ActionStatus.PENDING, attempts=0, attempt_limit=attempt_limit,
        next_attempt_at_ms=now_ms, in_flight_since_ms=None, result_code=None,
        result_message=None, created_at_ms=now_ms, updated_at_ms=now_ms,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same key, asked at the same moment for another order
        found = by_key(session, key)
        if found is None:
            raise
        _same_or_conflict(found, key, action, platform_order)
        return Asked(found, created=False)
    return Asked(row, created=True)


def existing(
    session: Session,
    *,
    key: str,
    action: Action,
    platform_order: Locked,
    request_key: str | None,
) -> OutboundAction | None:
    """The action an ask repeats: the one with idempotency key ``key``, else a pending or
    done action of the same kind on the same platform order and, for an action answering
    a request, the same request (``request_key``). A failed one is not repeated.

    :raises KeyConflict: the key names an action of another order or kind.
    """
    found = by_key(session, key)
    if found is not None:
        _same_or_conflict(found, key, action, platform_order)
        return found
    statement = (
        select(OutboundAction)
        .where(
            OutboundAction.platform == platform_order.platform,
            OutboundAction.platform_order_id == platform_order.platform_order_id,
            OutboundAction.action == action.value,
            OutboundAction.status.in_([ActionStatus.PENDING, ActionStatus.DONE]),
            OutboundAction.request_key.is_(None)
            if request_key is None
            else OutboundAction.request_key == request_key,
        )
        .order_by(OutboundAction.id.desc())
        .limit(1)
    )
    return session.execute(statement).scalar_one_or_none()


def _same_or_conflict(
    found: OutboundAction, key: str, action: Action, platform_order: Locked
) -> None:
    same = (found.platform, found.platform_order_id, found.action) == (
        platform_order.platform, platform_order.platform_order_id, action.value,
    )  # fmt: skip
    if not same:
        raise KeyConflict(
            f"idempotency key {key!r} is already action {found.id} ({found.action} "
            f"of {found.platform} order {found.platform_order_id})"
        )


def by_key(session: Session, key: str) -> OutboundAction | None:
    """The action with this idempotency key."""
    statement = select(OutboundAction).where(OutboundAction.idempotency_key == key)
    return session.execute(statement).scalar_one_or_none()


def open_from_inbox(session: Session, platform: str, platform_order_id: str) -> bool:
    """Create the bare row of a platform order whose first push is still unread in the
    inbox, with the store the push names (or else guesses), so that an action can be asked
    of it and lock it; a worker applying the push fills it in. False when the inbox holds no
    such push (the order is unknown)."""
    statement = (
        select(InboxEvent.store_id, InboxEvent.store_inferred, InboxEvent.received_at_ms)
        .where(
            UNREAD,
            InboxEvent.platform == platform,
            InboxEvent.platform_order_id == platform_order_id,
        )
        .order_by(InboxEvent.store_inferred, InboxEvent.id)
        .limit(1)
    )
    first = session.execute(statement).first()
    if first is None:
        return False
    insert_ignoring_conflict(
        session,
        PlatformOrder,
        {
            "platform": platform, "platform_order_id": platform_order_id,
            "store_id": first.store_id, "store_inferred": first.store_inferred,
            "discarded": False,
            "created_at_ms": first.received_at_ms, "updated_at_ms": first.received_at_ms,
        },
    )  # fmt: skip
    return True


_ATTACH = (
    update(OutboundAction)
    .where(
        OutboundAction.platform == bindparam("p_platform"),
        OutboundAction.platform_order_id == bindparam("p_platform_order_id"),
        OutboundAction.order_id.is_(None),
    )
    .values(order_id=bindparam("p_order_id"))
)


def attach_order_ids(session: Session, stored: Sequence[tuple[str, str, int]]) -> None:
    """Give the actions asked before their order was stored its id: ``stored`` holds
    ``(platform, platform_order_id, order_id)`` of the orders just stored."""
    if stored:
        session.connection().execute(
            _ATTACH,
            [
                {"p_platform": platform, "p_platform_order_id": order, "p_order_id": order_id}
                for platform, order, order_id in stored
            ],
        )


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
    that is past ``in_flight_timeout_ms`` the attempt counts as a transient failure with
    the result :data:`UNKNOWN_OUTCOME`: the next one starts at once while tries are left
    (a plugin answers a repeat of what the platform already did as ``done``), and the
    action fails when none are.
    """
    row = session.get(OutboundAction, action_id, with_for_update=True)
    if row is None or row.status != ActionStatus.PENDING:
        return Claim(Step.NOTHING)
    if row.in_flight_since_ms is not None:
        if now_ms - row.in_flight_since_ms < in_flight_timeout_ms:
            return Claim(Step.NOTHING)
        if row.attempts >= row.attempt_limit:
            _finish(
                session, row, ActionStatus.FAILED, UNKNOWN_OUTCOME,
                "the worker stopped during the last platform call, so whether the platform "
                "did it is unknown; check on the platform, then retry by hand if it did not",
                now_ms,
            )  # fmt: skip
            return Claim(Step.NOTHING)
        row.result_code = UNKNOWN_OUTCOME
        row.result_message = "the worker stopped during the platform call; tried again"
        row.next_attempt_at_ms = now_ms
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
    retry_delay_ms: int, verified: bool = False,
) -> OutboundAction | None:  # fmt: skip
    """Keep the platform's answer to the attempt that started at ``started_ms``: done,
    failed, or pending again after ``retry_delay_ms`` (a transient or unknown outcome with
    tries left); ``verified``: the answer was read off the order on the platform. None when
    that attempt is no longer in flight (it was given up meanwhile)."""
    row = session.get(OutboundAction, action_id, with_for_update=True)
    if row is None or row.status != ActionStatus.PENDING or row.in_flight_since_ms != started_ms:
        return None
    row.verified = verified
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
    change = changes.Changed(
        row.platform, row.platform_order_id, row.store_id, row.order_id, changes.ACTION
    )
    changes.note(session, [change], now)

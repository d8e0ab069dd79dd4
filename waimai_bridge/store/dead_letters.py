"""Dead letters a person settles: a parked inbox event discarded, a dead delivery given
another round.

Listing them, and putting a parked event or a failed action back in line, are
:func:`waimai_bridge.store.inbox.failed`, :func:`~waimai_bridge.store.inbox.retry`,
:func:`waimai_bridge.store.actions.listing`, :func:`~waimai_bridge.store.actions.retry` and
:func:`waimai_bridge.store.outbox.dead`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from waimai_bridge.store.inbox import ERROR_LENGTH, InboxStatus
from waimai_bridge.store.tables import Delivery, InboxEvent

DISCARDED = "discarded"
"""The status of a parked inbox event a person gave up on: it is never taken again."""
DEAD = "dead"
PENDING = "pending"


def discard_inbox(session: Session, row_id: int, note: str, *, now_ms: int) -> InboxEvent | None:
    """Give up on a parked event, keeping ``note`` (who and why) as its error; None when no
    parked event has that id."""
    row = session.get(InboxEvent, row_id, with_for_update=True)
    if row is None or row.status != InboxStatus.FAILED:
        return None
    row.status = DISCARDED
    row.error = note[:ERROR_LENGTH]
    row.done_at_ms = now_ms
    return row


def retry_delivery(
    session: Session, delivery_id: int, *, now_ms: int, due_at_ms: int
) -> Delivery | None:
    """Make a dead delivery due at ``due_at_ms`` (0: for the next sweep), its give-up time
    counted afresh from ``now_ms`` (its attempts and last error kept); None when no dead
    delivery has that id."""
    row = session.get(Delivery, delivery_id, with_for_update=True)
    if row is None or row.status != DEAD:
        return None
    row.status = PENDING
    row.next_attempt_at_ms = due_at_ms
    row.created_at_ms = now_ms
    return row

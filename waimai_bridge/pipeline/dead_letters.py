"""Dead letters — work that stopped and waits for a person: parked inbox events, failed
outbound actions, dead subscriber deliveries. Listing them, and retrying or discarding one,
each operation logged with who asked and why."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence

from waimai_bridge.errors import WaimaiBridgeError
from waimai_bridge.pipeline.actions import ActionWorker
from waimai_bridge.pipeline.apply import ShardApplier
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.store import actions as action_store
from waimai_bridge.store import dead_letters, inbox, outbox
from waimai_bridge.store.tables import Delivery, InboxEvent, OutboundAction

logger = logging.getLogger("waimai_bridge.dead_letters")

REASON_LENGTH = 500
"""The longest reason a person may give, in characters."""


class BadReason(WaimaiBridgeError, ValueError):
    """A reason that cannot be recorded: empty, too long, or holding control characters."""


def checked_reason(reason: str) -> str:
    """``reason`` without surrounding blanks, if it can be recorded.

    :raises BadReason: it is empty, longer than :data:`REASON_LENGTH`, or holds a control
        character (a line break included) or a lone surrogate.
    """
    text = reason.strip()
    if not text:
        raise BadReason("a reason is required")
    if len(text) > REASON_LENGTH:
        raise BadReason(f"the reason is longer than {REASON_LENGTH} characters")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise BadReason("the reason holds a control character")
    return text


class DeadLetters:
    """The dead letters of one process's pipeline, and a person's operations on them.

    ``send``: the process shares the workers' broker (or is the embedded worker), so a
    retry is sent at once; without it, retried work is only marked due and the running
    ``serve``'s sweeper sends it.
    """

    def __init__(
        self, pipeline: Pipeline, applier: ShardApplier, actions: ActionWorker, *, send: bool
    ) -> None:
        self.pipeline = pipeline
        self.applier = applier
        self.actions = actions
        self.send = send

    # ------------------------------------------------------------------ listing

    def parked_events(self, *, limit: int) -> Sequence[InboxEvent]:
        """The parked inbox events, oldest first."""
        with self.pipeline.database.transaction() as session:
            return inbox.failed(session, limit=limit)

    def failed_actions(self, *, limit: int) -> Sequence[OutboundAction]:
        """The failed outbound actions, newest first."""
        with self.pipeline.database.transaction() as session:
            failed = action_store.ActionStatus.FAILED
            return action_store.listing(session, status=failed, limit=limit)

    def dead_deliveries(self, *, limit: int) -> Sequence[Delivery]:
        """The deliveries given up on, newest first."""
        with self.pipeline.database.transaction() as session:
            return outbox.dead(session, limit=limit)

    # --------------------------------------------------------------- operations

    def retry_event(self, row_id: int, *, who: str, reason: str) -> InboxEvent | None:
        """Put a parked inbox event back in line; None when no event with that id is parked.

        :raises BadReason: see :func:`checked_reason`.
        """
        why = checked_reason(reason)
        if not self.applier.retry(row_id, send=self.send):
            return None
        _log("inbox event", row_id, "retried", who, why)
        with self.pipeline.database.transaction() as session:
            return session.get(InboxEvent, row_id)

    def discard_event(self, row_id: int, *, who: str, reason: str) -> InboxEvent | None:
        """Give up on a parked inbox event for good, who and why kept as its error; None when
        no event with that id is parked.

        :raises BadReason: see :func:`checked_reason`.
        """
        why = checked_reason(reason)
        with self.pipeline.database.transaction() as session:
            row = dead_letters.discard_inbox(
                session, row_id, f"discarded by {who}: {why}", now_ms=self.pipeline.clock()
            )
        if row is not None:
            _log("inbox event", row_id, "discarded", who, why)
        return row

    def retry_action(self, action_id: int, *, who: str, reason: str) -> OutboundAction | None:
        """Give a failed action another round of tries; None when no action with that id
        failed.

        :raises BadReason: see :func:`checked_reason`.
        """
        why = checked_reason(reason)
        row = self.actions.retry(action_id)
        if row is not None:
            _log("action", action_id, "retried", who, why)
        return row

    def retry_delivery(self, delivery_id: int, *, who: str, reason: str) -> Delivery | None:
        """Make a dead delivery due now, with a fresh give-up time; None when no delivery
        with that id is dead.

        :raises BadReason: see :func:`checked_reason`.
        """
        why = checked_reason(reason)
        now = self.pipeline.clock()
        with self.pipeline.database.transaction() as session:
            row = dead_letters.retry_delivery(
                session, delivery_id, now_ms=now, due_at_ms=now if self.send else 0
            )
        if row is None:
            return None
        _log("delivery", delivery_id, "retried", who, why)
        if self.send:
            self.pipeline.wake_deliveries()
        return row


def _log(what: str, row_id: int, done: str, who: str, why: str) -> None:
    logger.info("%s %s %s by %s: %s", what, row_id, done, who, why)

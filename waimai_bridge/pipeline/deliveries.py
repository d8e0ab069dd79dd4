"""Subscriber webhooks out (seed 001, seed 002): POST the outbox's due updates, signed.

Each update is POSTed as JSON with two headers::

    X-Waimai-Timestamp: <unix seconds>
    X-Waimai-Signature: <hex HMAC-SHA256 of "<timestamp>.<body>" with the subscription's secret>

A 2xx answer delivers it; anything else (or no answer) is retried with an exponential
backoff until ``[bridge].subscriber_give_up_seconds`` have passed, then it is dead and
listed by ``waimai-bridge deliveries dead``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

import dramatiq
import httpx

from waimai_bridge.metrics import DELIVERIES
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.shards import DELIVER, DELIVERY_QUEUE
from waimai_bridge.store import outbox
from waimai_bridge.store.tables import Delivery

logger = logging.getLogger(__name__)

BATCH = 20
"""Updates one message POSTs, at most."""
LEASE_MS = 120_000
"""How long a worker holds the updates it took before another may take them again."""
TIMESTAMP_HEADER = "X-Waimai-Timestamp"
SIGNATURE_HEADER = "X-Waimai-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Waimai-Signature`` of an update: hex HMAC-SHA256 of ``timestamp.body``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Due:
    delivery: Delivery
    url: str
    secret: str


class Deliverer:
    """POSTs the outbox to the subscribers, on the pipeline's broker."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        settings = pipeline.config.bridge
        self.first_retry_ms = int(settings.subscriber_retry_seconds * 1000)
        self.give_up_ms = int(settings.subscriber_give_up_seconds * 1000)
        self.timeout_s = settings.subscriber_timeout_seconds
        # registered with the broker; messages name the actor (see Pipeline.send)
        dramatiq.Actor(
            self.deliver, broker=pipeline.broker, actor_name=DELIVER,
            queue_name=DELIVERY_QUEUE, priority=0, options={},
        )  # fmt: skip

    def deliver(self) -> None:
        """POST the due updates (a batch), record each answer, and come back for the rest
        and for the retries."""
        pipeline = self.pipeline
        with pipeline.database.transaction() as session:
            rows = outbox.take_due(session, now_ms=pipeline.clock(), lease_ms=LEASE_MS, limit=BATCH)
            targets = outbox.secrets(session, {row.subscription_id for row in rows})
            due = [_Due(row, *targets[row.subscription_id]) for row in rows]
            session.expunge_all()
        if not due:
            return
        retries: list[int] = []
        with httpx.Client(timeout=self.timeout_s) as client:
            outcomes = [(item, self._post(client, item)) for item in due]
        with pipeline.database.transaction() as session:
            now = pipeline.clock()
            for item, error in outcomes:
                if error is None:
                    outbox.delivered(session, item.delivery.id, now_ms=now)
                    DELIVERIES.labels("done").inc()
                    continue
                again = outbox.not_delivered(
                    session, item.delivery, error, now_ms=now,
                    first_retry_ms=self.first_retry_ms, give_up_ms=self.give_up_ms,
                )  # fmt: skip
                DELIVERIES.labels("dead" if again is None else "retry").inc()
                if again is not None:
                    retries.append(again)
        if len(due) == BATCH:
            self.pipeline.wake_deliveries()
        if retries:
            self.pipeline.wake_deliveries(at_ms=min(retries))

    def sweep(self, *, stale_after_ms: int) -> bool:
        """Queue a run if some update has been due for long (a lost message); whether it did."""
        with self.pipeline.database.transaction() as session:
            due = outbox.next_due_ms(session)
        if due is not None and due < self.pipeline.clock() - stale_after_ms:
            self.pipeline.wake_deliveries()
            return True
        return False

    def _post(self, client: httpx.Client, item: _Due) -> str | None:
        """POST one update; None when the subscriber took it, else what went wrong."""
        body = item.delivery.body.encode("utf-8")
        timestamp = self.pipeline.clock() // 1000
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(item.secret, timestamp, body),
        }
        try:
            answer = client.post(item.url, content=body, headers=headers)
        except Exception as exc:  # whatever one URL raises is that update's failure alone
            return f"{type(exc).__name__}: {exc}"
        if answer.is_success:
            return None
        return f"HTTP {answer.status_code}: {answer.text[:200]}"

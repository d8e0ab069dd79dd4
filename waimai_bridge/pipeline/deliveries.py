"""Subscriber webhooks out (seed 001, seed 002): POST the outbox's due updates, signed.

Each update is POSTed as JSON with two headers::

    X-Waimai-Timestamp: <unix seconds>
    X-Waimai-Signature: <hex HMAC-SHA256 of "<timestamp>.<body>" with the subscription's secret>

A 2xx answer delivers it; anything else (or no answer) is retried with an exponential
backoff until ``[bridge].subscriber_give_up_seconds`` have passed, then it is dead and
listed by ``waimai-bridge deliveries dead``.

A run cannot stall: each subscriber's updates go in a lane of their own, the lanes POST at
the same time, every outcome is recorded as it comes, a POST ends within
``subscriber_timeout_seconds``, and no lane starts a POST the run's time budget cannot
hold; what a lane leaves is due again at once. A subscriber that cannot be reached (no
connection, no answer in time, an address the rule of :mod:`waimai_bridge.egress` refuses)
is not tried again in that run: its other updates wait for the failed one's retry. An
answer is read up to :data:`ANSWER_CAP` bytes and kept as its status alone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dramatiq
import httpx

from waimai_bridge.egress import AddressNotAllowed, GuardedTransport
from waimai_bridge.metrics import DELIVERIES
from waimai_bridge.pipeline.broker import TIME_LIMIT_MS
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.shards import DELIVER, DELIVERY_QUEUE
from waimai_bridge.store import outbox
from waimai_bridge.store.tables import Delivery

logger = logging.getLogger(__name__)

BATCH = 20
"""Updates a run takes for one subscriber, at most."""
LANES = 8
"""Subscribers a run POSTs to at the same time, at most."""
BUDGET_SECONDS = TIME_LIMIT_MS / 1000 / 2
"""How long a run may POST: half the actor's time limit."""
LEASE_MS = 120_000
"""How long a worker holds the updates it took before another may take them again."""
ANSWER_CAP = 1024
"""The bytes of a subscriber's answer read, at most (the rest is not read)."""
ERROR_CHARS = 200
"""The length of a failure's text kept, at most."""
TIMESTAMP_HEADER = "X-Waimai-Timestamp"
SIGNATURE_HEADER = "X-Waimai-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Waimai-Signature`` of an update: hex HMAC-SHA256 of ``timestamp.body``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Lane:
    """One subscriber's due updates in a run."""

    url: str
    secret: str
    rows: list[Delivery]


@dataclass
class _LaneEnd:
    """What a lane leaves for later: when its retries are due, whether it left updates."""

    retries: list[int] = field(default_factory=list)
    left: bool = False


class Deliverer:
    """POSTs the outbox to the subscribers, on the pipeline's broker."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        settings = pipeline.config.bridge
        self.first_retry_ms = int(settings.subscriber_retry_seconds * 1000)
        self.give_up_ms = int(settings.subscriber_give_up_seconds * 1000)
        self.timeout_s = settings.subscriber_timeout_seconds
        self.allow_private = settings.subscriber_allow_private
        self.budget_s = BUDGET_SECONDS
        self._tls = httpx.create_ssl_context()
        # registered with the broker; messages name the actor (see Pipeline.send)
        dramatiq.Actor(
            self.deliver, broker=pipeline.broker, actor_name=DELIVER,
            queue_name=DELIVERY_QUEUE, priority=0, options={},
        )  # fmt: skip

    def deliver(self) -> None:
        """POST the due updates, each subscriber's in its own lane, within the run's time
        budget; record each answer as it comes, and come back for the rest and the retries."""
        until = time.monotonic() + self.budget_s
        lanes, more = self._take()
        if not lanes:
            return
        with ThreadPoolExecutor(len(lanes), thread_name_prefix="waimai-deliver") as lanes_pool:
            ends = list(lanes_pool.map(lambda lane: self._run(lane, until), lanes))
        if more or any(end.left for end in ends):
            self.pipeline.wake_deliveries()
        retries = [at for end in ends for at in end.retries]
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

    def _take(self) -> tuple[list[_Lane], bool]:
        """The lanes of a run (leased), and whether more updates are due than it took."""
        with self.pipeline.database.transaction() as session:
            now = self.pipeline.clock()
            chosen = outbox.due_subscriptions(session, now_ms=now, limit=LANES + 1)
            more = len(chosen) > LANES
            targets = outbox.secrets(session, set(chosen[:LANES]))
            lanes: list[_Lane] = []
            for subscription_id in chosen[:LANES]:
                rows = outbox.take_due(
                    session, now_ms=now, lease_ms=LEASE_MS, limit=BATCH,
                    subscription_id=subscription_id,
                )  # fmt: skip
                more = more or len(rows) == BATCH
                if rows and subscription_id in targets:
                    lanes.append(_Lane(*targets[subscription_id], rows))
            session.expunge_all()
        return lanes, more

    def _run(self, lane: _Lane, until: float) -> _LaneEnd:
        """POST a lane's updates one after another; stop when the budget cannot hold one
        more POST, or when the subscriber cannot be reached."""
        end = _LaneEnd()
        total_s = min(self.timeout_s, self.budget_s)
        transport = GuardedTransport(
            allow_private=self.allow_private, total_seconds=total_s, ssl_context=self._tls
        )
        client = httpx.Client(
            transport=transport, timeout=self.timeout_s, follow_redirects=False, trust_env=False
        )
        with client:
            for index, row in enumerate(lane.rows):
                if index and time.monotonic() + total_s > until:
                    self._put_back(lane.rows[index:], "not tried: the run's time ran out",
                                   at_ms=self.pipeline.clock())  # fmt: skip
                    end.left = True
                    break
                error, answered = self._post(client, lane, row)
                again = self._record(row, error)
                if again is not None:
                    end.retries.append(again)
                if error is not None and not answered and index + 1 < len(lane.rows):
                    at = again if again is not None else self.pipeline.clock() + self.first_retry_ms
                    self._put_back(lane.rows[index + 1 :], f"not tried: {error}", at_ms=at)
                    end.retries.append(at)
                    break
        return end

    def _record(self, row: Delivery, error: str | None) -> int | None:
        """Record one POST's outcome; when the update is due again (None: done or dead)."""
        with self.pipeline.database.transaction() as session:
            now = self.pipeline.clock()
            if error is None:
                outbox.delivered(session, row.id, now_ms=now)
                DELIVERIES.labels("done").inc()
                return None
            again = outbox.not_delivered(
                session, row, error, now_ms=now,
                first_retry_ms=self.first_retry_ms, give_up_ms=self.give_up_ms,
            )  # fmt: skip
        DELIVERIES.labels("dead" if again is None else "retry").inc()
        return again

    def _put_back(self, rows: list[Delivery], reason: str, *, at_ms: int) -> None:
        """Updates a lane did not POST: due again at ``at_ms``, or dead once given up on."""
        with self.pipeline.database.transaction() as session:
            died = outbox.put_back(
                session, [row.id for row in rows], reason, at_ms=at_ms,
                now_ms=self.pipeline.clock(), give_up_ms=self.give_up_ms,
            )  # fmt: skip
        if died:
            DELIVERIES.labels("dead").inc(died)

    def _post(self, client: httpx.Client, lane: _Lane, row: Delivery) -> tuple[str | None, bool]:
        """POST one update: None when the subscriber took it, else what went wrong; and
        whether the subscriber answered at all."""
        body = row.body.encode("utf-8")
        timestamp = self.pipeline.clock() // 1000
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(lane.secret, timestamp, body),
        }
        try:
            with client.stream("POST", lane.url, content=body, headers=headers) as answer:
                status = answer.status_code
                _skim(answer)
        except Exception as exc:  # whatever one URL raises is that update's failure alone
            return _failure(exc), False
        if 200 <= status < 300:
            return None, True
        return f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip(), True


def _skim(answer: httpx.Response) -> None:
    """Read up to :data:`ANSWER_CAP` bytes of an answer, as sent (not decompressed), and
    drop them; a failure once the status is in does not change the outcome."""
    read = 0
    try:
        for chunk in answer.iter_raw():
            read += len(chunk)
            if read >= ANSWER_CAP:
                return
    except httpx.HTTPError:
        return


def _failure(exc: Exception) -> str:
    """The text kept of a POST that raised: printable and short."""
    text = str(exc) if isinstance(exc, AddressNotAllowed) else f"{type(exc).__name__}: {exc}"
    return "".join(char if char.isprintable() else "?" for char in text[:ERROR_CHARS])

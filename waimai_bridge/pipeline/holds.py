"""The accept holds' releases: gathered per shard queue, sent as delayed messages, and the
actor that ends them (store, discard, or come back later).

A hold's release goes to the queue of its store's shard, like every message about its
order. The outcome is decided in the database under the orders' locks
(:mod:`waimai_bridge.store.holds`), so a release that runs twice, too early or late is
harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import dramatiq

from waimai_bridge.metrics import ORDERS_RELEASED
from waimai_bridge.pipeline.failures import is_outage
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.shards import queue_name
from waimai_bridge.store.holds import Release, Released, release_due, release_holds

logger = logging.getLogger(__name__)

RELEASE_HOLDS = "waimai.release_holds"
BEHIND_MS = 10_000
"""A release this late means a backlog (a worker was down): release the shard's other due
holds with it, :data:`CATCH_UP` at a time. Not sooner: the catch-up holds the locks of the
orders it releases, and their events wait for it."""
CATCH_UP = 20
"""Due holds a late release takes along, at most."""
GATHER_RELEASES_MS = 1000
"""How long a worker on a shared broker gathers the holds its batches start for a shard
queue before it sends their releases (one message for all of them): a message per hold
costs the worker much of its time (docs/performance.md), and a hold then ends this much
later at most. Each queue's gathering starts with its first hold, so the queues' releases
do not all come due at once. Holds a killed worker had gathered are released by the
sweep, as those of a lost message are."""


@dataclass(frozen=True)
class Hold:
    """An order's accept hold, and when it ends."""

    platform: str
    platform_order_id: str
    store_id: str
    release_at_ms: int


class HoldReleases:
    """The ``waimai.release_holds`` actor of one process's pipeline; with ``gather_ms``, the
    holds of a shard queue gather for that long before their release is sent."""

    def __init__(self, pipeline: Pipeline, *, gather_ms: int = 0) -> None:
        self.pipeline = pipeline
        self.gather_ms = gather_ms
        self._gathered: dict[str, tuple[list[Hold], threading.Timer]] = {}
        self._gathering = threading.Lock()
        # registered with the broker; messages name the actor (see Pipeline.send)
        dramatiq.Actor(
            self.release_holds, broker=pipeline.broker, actor_name=RELEASE_HOLDS,
            queue_name=queue_name(0), priority=0, options={},
        )  # fmt: skip

    def release_holds(self, orders: list[list[str]]) -> None:
        """End the accept holds of ``orders`` (each ``[platform, platform_order_id,
        store_id]``): store each, discard it, or come back when it is due or an event
        received within its hold is still unread.

        A release that runs late (a backlog, or a worker that was down) also releases the
        other due holds of its shards in the same transaction. When releasing them
        together fails for any other reason than an outage, each is released alone, so
        one order that cannot be stored never holds back the others.
        """
        keys = [(platform, platform_order_id) for platform, platform_order_id, _ in orders]
        stores = {(platform, order): store for platform, order, store in orders}
        try:
            released = self._release(keys, stores, catch_up=True)
        except Exception as exc:
            if is_outage(exc):
                raise
            logger.warning(
                "releasing %d holds together failed (%s); releasing them one by one",
                len(keys), type(exc).__name__,
            )  # fmt: skip
            released = [self._release_alone(key, stores) for key in keys]
        self.schedule_releases(
            [
                Hold(*key, stores[key], outcome.release_at_ms)
                for key, outcome in zip(keys, released, strict=True)
                if outcome.outcome in (Release.NOT_YET, Release.UNREAD)
                and outcome.release_at_ms is not None
            ]
        )

    def _release(
        self, keys: list[tuple[str, str]], stores: dict[tuple[str, str], str], *,
        catch_up: bool, lines: bool = True,
    ) -> list[Released]:  # fmt: skip
        """Release the holds of ``keys`` in one transaction (with ``catch_up``, and this
        late, other due holds of their shards too); the outcome of each key."""
        now = self.pipeline.clock()
        with self.pipeline.database.transaction(durable=False) as session:
            # these orders first (they may wait for their locks); the others only if free
            released = release_holds(
                session, keys, accept_hold_ms=self.pipeline.accept_hold_ms, now_ms=now, lines=lines
            )
            others: list[Released] = []
            late = max((outcome.overdue_ms or 0 for outcome in released), default=0) > BEHIND_MS
            if catch_up and late:
                pipeline = self.pipeline
                shards = sorted({pipeline.shard_of(stores[key]) for key in keys})
                others = release_due(
                    session, [store for shard in shards for store in pipeline.stores_in(shard)],
                    accept_hold_ms=pipeline.accept_hold_ms, now_ms=now, limit=CATCH_UP,
                )  # fmt: skip
        self.pipeline.deliveries_written(session)
        for outcome in [*released, *others]:
            ORDERS_RELEASED.labels(outcome.outcome).inc()
        return released

    def _release_alone(self, key: tuple[str, str], stores: dict[tuple[str, str], str]) -> Released:
        """Release one hold in a transaction of its own; an order whose lines the database
        refuses is stored without them (an anomaly says so); one it cannot store at all is
        left held, logged, for the sweep to try again."""
        for lines in (True, False):
            try:
                [released] = self._release([key], stores, catch_up=False, lines=lines)
            except Exception as exc:
                if is_outage(exc):
                    raise
                failure = type(exc).__name__
            else:
                return released
        ORDERS_RELEASED.labels(Release.FAILED).inc()
        logger.error(
            "the hold of %s order %s could not be released (%s); the sweep tries again",
            key[0], key[1], failure,
        )  # fmt: skip
        return Released(Release.FAILED)

    def schedule_releases(self, holds: Sequence[Hold]) -> None:
        """Send the releases of these holds, or with ``gather_ms`` gather each with
        the holds of its shard queue scheduled within that time (from the first) and send
        those together then."""
        if not holds:
            return
        if not self.gather_ms:
            self._send_releases(holds)
            return
        with self._gathering:
            for hold in holds:
                queue = self.pipeline.queue_of(hold.store_id)
                if queue not in self._gathered:
                    timer = threading.Timer(
                        self.gather_ms / 1000, self.send_gathered_releases, (queue,)
                    )
                    timer.daemon = True
                    self._gathered[queue] = ([], timer)
                    timer.start()
                self._gathered[queue][0].append(hold)

    def send_gathered_releases(self, queue: str | None = None) -> None:
        """Send the releases of the holds gathered so far for ``queue`` (when its gathering
        time is over), or for every queue (None: when the worker stops)."""
        with self._gathering:
            queues = list(self._gathered) if queue is None else [queue]
            gathered = [self._gathered.pop(name) for name in queues if name in self._gathered]
        for _, timer in gathered:
            timer.cancel()
        self._send_releases([hold for holds, _ in gathered for hold in holds])

    def _send_releases(self, holds: Sequence[Hold]) -> None:
        """Send the releases of these holds: one delayed message per shard queue, due when
        the last of its holds is."""
        by_queue: dict[str, list[Hold]] = {}
        for hold in holds:
            by_queue.setdefault(self.pipeline.queue_of(hold.store_id), []).append(hold)
        now = self.pipeline.clock()
        for queue, due in sorted(by_queue.items()):
            orders = [[h.platform, h.platform_order_id, h.store_id] for h in due]
            delay = max(h.release_at_ms for h in due) - now
            # due already: straight to the queue, not through its delay queue
            self.pipeline.send(
                RELEASE_HOLDS, queue, (orders,), delay=delay if delay > 0 else None, quiet=True
            )

"""The actors of the pipeline: apply a shard's pending inbox events, and the sweep that
resends what a lost message left behind; the accept holds' releases are
:mod:`waimai_bridge.pipeline.releases`.

Messages go to the queue of their store's shard (:mod:`waimai_bridge.pipeline.shards`),
so one store's events stay on one queue; correctness does not rest on that order, though:
every actor reads the durable state, applies it under the orders' locks and is harmless
to run twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Broker, Message
from sqlalchemy.orm import Session

from waimai_bridge.clock import Clock, system_clock
from waimai_bridge.config import Config
from waimai_bridge.metrics import (
    EVENTS_PROCESSED,
    INBOX_EVENTS,
    PUSH_TO_COMMIT_SECONDS,
    SWEPT,
)
from waimai_bridge.models import Capability, Event, NativeEvent, PriceBreakdown
from waimai_bridge.pipeline.broker import GATHER_MS
from waimai_bridge.pipeline.failures import error_text, is_outage
from waimai_bridge.pipeline.releases import Hold, HoldReleases
from waimai_bridge.pipeline.shards import DELIVER, DELIVERY_QUEUE, queue_name, shard_of
from waimai_bridge.pipeline.signals import signals_for
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.store import inbox, outbox
from waimai_bridge.store.database import Database
from waimai_bridge.store.holds import overdue_holds
from waimai_bridge.store.orders import Incoming, apply_events

logger = logging.getLogger(__name__)


PROCESS_SHARD = "waimai.process_shard"
SWEEP_BATCH = 1000
"""Stale inbox events and overdue holds one sweep looks at, at most."""
BATCH = 100
"""Inbox events applied in one transaction, at most."""
GATHER_EVENTS_MS = 50
"""How long the events of a shard gather, on a shared broker, before a worker takes them:
the message the web sends for the first of them is handed to a worker thread when it is
this old (:data:`~waimai_bridge.pipeline.broker.GATHER_MS`), and the shard's signal, up
until then, keeps the web from sending more. At a moderate rate a worker otherwise took
the events of a push or two in a transaction of their own, as soon as they were written:
at 1,300-1,400 events/s on a 2-core machine, 6-8 events a transaction against 10-12
gathered for 50 ms, which took a fifth less of the worker's CPU and a tenth less of
PostgreSQL's (docs/performance.md). A backlog's messages are old already: they pass at
once."""


@dataclass(frozen=True)
class Swept:
    """What one sweep sent again."""

    events: int
    releases: int
    actions: int = 0
    deliveries: int = 0


class Pipeline:
    """The actors of one process, bound to its database, broker, plugins and config."""

    def __init__(
        self,
        *,
        database: Database,
        broker: Broker,
        registry: PluginRegistry,
        config: Config,
        clock: Clock = system_clock,
        stale_after_ms: int = 60_000,
        gather_releases_ms: int = 0,
        gather_events_ms: int = 0,
    ) -> None:
        self.database = database
        self.broker = broker
        self.registry = registry
        self.config = config
        self.clock = clock
        self.shards = config.bridge.shards
        self.accept_hold_ms = config.bridge.accept_hold_seconds * 1000
        self.stale_after_ms = stale_after_ms
        self.gather_events_ms = gather_events_ms
        self.signals = signals_for(broker)
        self._stores: dict[int, list[str]] = {shard: [] for shard in range(self.shards)}
        for store_id in config.stores:
            self._stores[shard_of(store_id, self.shards)].append(store_id)
        for shard in range(self.shards):
            broker.declare_queue(queue_name(shard))
        broker.declare_queue(DELIVERY_QUEUE)
        # registered with the broker; messages name the actor (see Pipeline.send)
        dramatiq.Actor(
            self.process_shard, broker=broker, actor_name=PROCESS_SHARD,
            queue_name=queue_name(0), priority=0, options={},
        )  # fmt: skip
        self.releases = HoldReleases(self, gather_ms=gather_releases_ms)

    def queues(self, shards: Iterable[int] | None = None) -> set[str]:
        """The queues a worker of ``shards`` (all shards when None) consumes: theirs, and
        the subscriber deliveries' queue, which every worker shares."""
        chosen = range(self.shards) if shards is None else shards
        return {queue_name(shard) for shard in chosen} | {DELIVERY_QUEUE}

    # ------------------------------------------------------------------ receiving

    def receive(self, events: Sequence[NativeEvent], *, received_at_ms: int) -> int:
        """Write a push's events to the inbox (committed), then queue the new ones.

        Returns how many were new. A broker failure after the commit loses nothing: the
        rows stay pending and the sweeper sends them again.
        """
        return self.receive_all([(events, received_at_ms)])

    def receive_all(self, pushes: Sequence[tuple[Sequence[NativeEvent], int]]) -> int:
        """:meth:`receive` for several pushes (each with when it was received) in one
        statement and one commit; how many of their events were new."""
        new, shards = self.store_pushes(pushes)
        self.wake(*shards)
        return new

    def store_pushes(
        self, pushes: Sequence[tuple[Sequence[NativeEvent], int]]
    ) -> tuple[int, set[int]]:
        """The inbox half of :meth:`receive_all`: how many events were new, and the shards
        to :meth:`wake` for them."""
        with self.database.connection() as connection:
            events = [event for push, _ in pushes for event in push]
            times = [received_at_ms for push, received_at_ms in pushes for _ in push]
            received = list(zip(inbox.with_known_stores(connection, events), times, strict=True))
            new = inbox.record(connection, received, shard_of=self.shard_of)
        return self.recorded(received, new)

    def recorded(
        self, received: Sequence[tuple[NativeEvent, int]], new: Sequence[tuple[int, str, str]]
    ) -> tuple[int, set[int]]:
        """Count events written to the inbox (``received``; ``new``: ``(row id, platform,
        store id)`` of those that were not there yet): how many were new, and the shards to
        :meth:`wake` for them."""
        counts = Counter(event.platform for event, _ in received)
        fresh = Counter(platform for _, platform, _ in new)
        for platform, count in counts.items():
            INBOX_EVENTS.labels(platform, "new").inc(fresh[platform])
            INBOX_EVENTS.labels(platform, "duplicate").inc(count - fresh[platform])
        return len(new), {self.shard_of(store_id) for _, _, store_id in new}

    def wake(self, *shards: int, force: bool = False) -> None:
        """Make sure a message for each of ``shards`` is waiting in its queue (``force``:
        send one whatever the signals say, when a message may have been lost or a backlog
        waits; its events do not gather, see :data:`GATHER_EVENTS_MS`)."""
        try:
            raised = self.signals.raise_signals(shards)
        except Exception:  # the broker's Redis is down: the sweeper wakes the shards later
            logger.warning("could not raise the signals of shards %s", shards, exc_info=True)
            return
        options = {GATHER_MS: self.gather_events_ms} if self.gather_events_ms and not force else {}
        for shard in sorted(set(shards)):
            if (shard in raised or force) and not self.send(
                PROCESS_SHARD, queue_name(shard), (shard,), quiet=True, options=options
            ):
                self._lower_quietly(shard)

    def _lower_quietly(self, shard: int) -> None:
        try:
            self.signals.lower(shard)
        except Exception:
            logger.warning("could not lower the signal of shard %s", shard, exc_info=True)

    def retry(self, row_id: int, *, send: bool = True) -> bool:
        """Put a parked inbox event back in line; False when no failed row has that id.

        Without ``send`` (a process whose broker is not the one the workers use) the row is
        only marked pending and due, and the next sweep sends it.
        """
        with self.database.transaction() as session:
            row = inbox.retry(session, row_id, self.clock() if send else 0)
            shard = row.shard if row is not None else None
        if shard is None:
            return False
        if send:
            self.wake(shard, force=True)
        return True

    # ------------------------------------------------------------------ actors

    def process_shard(self, shard: int) -> None:
        """Apply the pending inbox events of ``shard`` to their orders, a batch at a time.

        The batch is one transaction (commits are the main cost); an event its plugin
        cannot read is parked with its error and the rest go on. When applying the batch
        fails for any other reason than an outage of the database or broker, its events
        are applied one by one, and the one that fails alone is parked: one bad event never
        stops its shard. A full batch sends the shard's message again, for what is still
        waiting.
        """
        self.signals.lower(shard)
        taken: list[int] = []
        try:
            self._apply(shard, taken)
        except Exception as exc:
            if not taken or is_outage(exc):
                raise
            logger.warning(
                "a batch of %d events of shard %s failed (%s); applying them one by one",
                len(taken), shard, type(exc).__name__,
            )  # fmt: skip
            for row_id in taken:
                self._apply_alone(shard, row_id)
        if len(taken) == BATCH:
            self.wake(shard, force=True)

    def _apply(self, shard: int, taken: list[int], *, row_id: int | None = None) -> None:
        """Take pending events of ``shard`` (or the row ``row_id`` alone) and apply them in
        one transaction; ``taken`` gets the ids of the rows taken, also when it fails."""
        with self.database.transaction(durable=False) as session:
            now = self.clock()
            rows = inbox.take(session, shard, limit=BATCH, now_ms=now, row_id=row_id)
            taken.extend(int(row.id) for row in rows)
            incoming: list[Incoming] = []
            for row in rows:
                native = inbox.native_event(row)
                try:
                    event, price = self._read(native)
                except Exception as exc:  # the plugin cannot read this payload: a poison event
                    inbox.park(session, row.id, f"{type(exc).__name__}: {exc}", now)
                    EVENTS_PROCESSED.labels(native.platform, "failed").inc()
                    logger.warning("inbox event %s parked: %s: %s", row.id, type(exc).__name__, exc)
                    continue
                incoming.append(Incoming(event, row.received_at_ms, price))
            applied = apply_events(session, incoming, accept_hold_ms=self.accept_hold_ms)
        self.deliveries_written(session)
        committed = self.clock()
        holds: list[Hold] = []
        for item, outcome in zip(incoming, applied, strict=True):
            event = item.event
            PUSH_TO_COMMIT_SECONDS.observe(max(committed - item.received_at_ms, 0) / 1000)
            EVENTS_PROCESSED.labels(
                event.platform, "duplicate" if outcome.duplicate else "applied"
            ).inc()
            if outcome.starts_hold and outcome.release_at_ms is not None:
                order = (event.platform, event.platform_order_id, event.store_id)
                holds.append(Hold(*order, outcome.release_at_ms))
        self.releases.schedule_releases(holds)

    def _apply_alone(self, shard: int, row_id: int) -> None:
        """Apply one inbox event in a transaction of its own; park it with its error when
        that fails for any other reason than an outage."""
        try:
            self._apply(shard, [], row_id=row_id)
        except Exception as exc:
            if is_outage(exc):
                raise
            with self.database.transaction() as session:
                now = self.clock()
                rows = inbox.take(session, shard, limit=1, now_ms=now, row_id=row_id)
                for row in rows:
                    inbox.park(session, row.id, error_text(exc), now)
                    EVENTS_PROCESSED.labels(row.platform, "failed").inc()
            # the type only: a database error's text may carry the event's values
            logger.warning("inbox event %s parked: %s", row_id, type(exc).__name__)

    def sweep(self) -> Swept:
        """Send again what a lost message left behind: stale pending inbox rows and holds
        whose release is overdue."""
        now = self.clock()
        with self.database.transaction() as session:
            shards = inbox.stale(
                session, enqueued_before_ms=now - self.stale_after_ms, now_ms=now,
                limit=SWEEP_BATCH, shard_of=self.shard_of,
            )  # fmt: skip
            holds = overdue_holds(
                session, accept_hold_ms=self.accept_hold_ms,
                before_ms=now - self.stale_after_ms, limit=SWEEP_BATCH,
            )  # fmt: skip
        self.wake(*shards, force=True)
        self.releases.schedule_releases([Hold(*hold, release_at_ms=now) for hold in holds])
        SWEPT.labels("event").inc(sum(shards.values()))
        SWEPT.labels("release").inc(len(holds))
        return Swept(sum(shards.values()), len(holds))

    # ------------------------------------------------------------------ internals

    def shard_of(self, store_id: str) -> int:
        """The shard of a store."""
        return shard_of(store_id, self.shards)

    def stores_in(self, shard: int) -> list[str]:
        """The configured stores of a shard."""
        return self._stores[shard]

    def queue_of(self, store_id: str) -> str:
        """The queue of a store's shard: every message about its orders goes there."""
        return queue_name(self.shard_of(store_id))

    def _read(self, native: NativeEvent) -> tuple[Event, PriceBreakdown | None]:
        platform = self.registry.platform(native.platform)
        event = platform.event(native)
        price = None
        if platform.supports(Capability.PRICE_BREAKDOWN):
            price = platform.price_breakdown(native, self.config.plugin_config(native.platform))
        return event, price

    def deliveries_written(self, session: Session) -> None:
        """Queue a subscriber delivery run if the committed transaction of ``session``
        wrote updates to the outbox."""
        if session.info.pop(outbox.WRITTEN, 0):
            self.wake_deliveries()

    def wake_deliveries(self, *, at_ms: int | None = None) -> None:
        """Queue a subscriber delivery run, now or at ``at_ms``."""
        delay = None if at_ms is None else max(at_ms - self.clock(), 0)
        self.send(DELIVER, DELIVERY_QUEUE, (), delay=delay, quiet=True)

    def send(
        self, actor_name: str, queue: str, args: tuple[Any, ...],
        *, delay: int | None = None, quiet: bool = False, options: dict[str, Any] | None = None,
    ) -> bool:  # fmt: skip
        """Send a message for the actor ``actor_name`` to ``queue`` (with the message
        ``options``, if any); False when ``quiet`` hid a failure (the durable state is
        committed, so a sweep sends it again)."""
        message: Message[Any] = Message(
            queue_name=queue,
            actor_name=actor_name,
            args=args,
            kwargs={},
            options=dict(options or {}),
        )
        try:
            self.broker.enqueue(message, delay=delay)
        except Exception:
            if not quiet:
                raise
            # the durable state is committed: the sweeper sends this again
            logger.warning(
                "could not queue %s%r; the sweeper will", actor_name, args, exc_info=True
            )
            return False
        return True

"""The pipeline's messages: the parts every actor shares (database, broker, plugins, config,
clock), sending a message, and waking a shard or the subscriber deliveries.

Messages go to the queue of their store's shard (:mod:`waimai_bridge.pipeline.shards`),
so one store's events stay on one queue; correctness does not rest on that order, though:
every actor reads the durable state, applies it under the orders' locks and is harmless
to run twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from dramatiq import Broker, Message
from sqlalchemy.orm import Session

from waimai_bridge.clock import Clock, system_clock
from waimai_bridge.config import Config
from waimai_bridge.metrics import OTHER
from waimai_bridge.pipeline.broker import GATHER_MS
from waimai_bridge.pipeline.shards import (
    DELIVER,
    DELIVERY_QUEUE,
    PROCESS_SHARD,
    queue_name,
    shard_of,
)
from waimai_bridge.pipeline.signals import signals_for
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.store import outbox
from waimai_bridge.store.database import Database

logger = logging.getLogger(__name__)

GATHER_EVENTS_MS = 50
"""How long the events of a shard gather, on a shared broker, before a worker takes them:
the message the web sends for the first of them is handed to a worker thread when it is
this old (:data:`~waimai_bridge.pipeline.broker.GATHER_MS`), and the shard's signal, up
until then, keeps the web from sending more. Larger transactions cost less per event
(docs/performance.md); a backlog's messages are old already and pass at once."""


class Pipeline:
    """What the actors of one process share: its database, broker, plugins, config and
    clock, the shards of its stores, and the messages between them."""

    def __init__(
        self,
        *,
        database: Database,
        broker: Broker,
        registry: PluginRegistry,
        config: Config,
        clock: Clock = system_clock,
        gather_events_ms: int = 0,
    ) -> None:
        self.database = database
        self.broker = broker
        self.registry = registry
        self.config = config
        self.clock = clock
        self.shards = config.bridge.shards
        self.accept_hold_ms = config.bridge.accept_hold_seconds * 1000
        self.gather_events_ms = gather_events_ms
        self.signals = signals_for(broker)
        self._stores: dict[int, list[str]] = {shard: [] for shard in range(self.shards)}
        self._codes: dict[str, frozenset[str]] = {}
        for store_id in config.stores:
            self._stores[shard_of(store_id, self.shards)].append(store_id)
        for shard in range(self.shards):
            broker.declare_queue(queue_name(shard))
        broker.declare_queue(DELIVERY_QUEUE)

    def queues(self, shards: Iterable[int] | None = None) -> set[str]:
        """The queues a worker of ``shards`` (all shards when None) consumes: theirs, and
        the subscriber deliveries' queue, which every worker shares."""
        chosen = range(self.shards) if shards is None else shards
        return {queue_name(shard) for shard in chosen} | {DELIVERY_QUEUE}

    def shard_of(self, store_id: str) -> int:
        """The shard of a store."""
        return shard_of(store_id, self.shards)

    def kind_label(self, platform: str, native_code: str) -> str:
        """A native code as a metric label: one of the platform's manifest codes, or
        ``other`` (a label never takes its value from input)."""
        codes = self._codes.get(platform)
        if codes is None:
            try:
                manifest = self.registry.platform(platform).manifest
            except LookupError:
                return OTHER
            codes = self._codes[platform] = frozenset(code.code for code in manifest.native_codes)
        return native_code if native_code in codes else OTHER

    def stores_in(self, shard: int) -> list[str]:
        """The configured stores of a shard."""
        return self._stores[shard]

    def queue_of(self, store_id: str) -> str:
        """The queue of a store's shard: every message about its orders goes there."""
        return queue_name(self.shard_of(store_id))

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

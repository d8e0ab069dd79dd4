"""The shard actor: apply a shard's pending inbox events to their orders, a batch at a
time, and put a parked event back in line."""

from __future__ import annotations

import logging

import dramatiq

from waimai_bridge.errors import failure_site
from waimai_bridge.metrics import EVENTS_PROCESSED, PUSH_TO_COMMIT_SECONDS
from waimai_bridge.models import Capability, NativeEvent
from waimai_bridge.pipeline.auto_accept import AutoAccept
from waimai_bridge.pipeline.failures import error_text, is_outage
from waimai_bridge.pipeline.holds import Hold, HoldReleases
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.shards import PROCESS_SHARD, queue_name
from waimai_bridge.store import inbox
from waimai_bridge.store.events import Incoming, apply_events

logger = logging.getLogger(__name__)

BATCH = 100
"""Inbox events applied in one transaction, at most."""


class ShardApplier:
    """The ``waimai.process_shard`` actor of one process's pipeline."""

    def __init__(self, pipeline: Pipeline, holds: HoldReleases, auto_accept: AutoAccept) -> None:
        self.pipeline = pipeline
        self.holds = holds
        self.auto_accept = auto_accept
        # registered with the broker; messages name the actor (see Pipeline.send)
        dramatiq.Actor(
            self.process_shard, broker=pipeline.broker, actor_name=PROCESS_SHARD,
            queue_name=queue_name(0), priority=0, options={},
        )  # fmt: skip

    def process_shard(self, shard: int) -> None:
        """Apply the pending inbox events of ``shard`` to their orders, a batch at a time.

        The batch is one transaction (commits are the main cost); an event its plugin
        cannot read is parked with its error and the rest go on. When applying the batch
        fails for any other reason than an outage of the database or broker, its events
        are applied one by one, and the one that fails alone is parked: one bad event never
        stops its shard. A full batch sends the shard's message again, for what is still
        waiting.
        """
        self.pipeline.signals.lower(shard)
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
            self.pipeline.wake(shard, force=True)

    def retry(self, row_id: int, *, send: bool = True) -> bool:
        """Put a parked inbox event back in line; False when no failed row has that id.

        Without ``send`` (a process whose broker is not the one the workers use) the row is
        only marked pending and due, and the next sweep sends it.
        """
        pipeline = self.pipeline
        with pipeline.database.transaction() as session:
            row = inbox.retry(session, row_id, pipeline.clock() if send else 0)
            shard = row.shard if row is not None else None
        if shard is None:
            return False
        if send:
            pipeline.wake(shard, force=True)
        return True

    def _apply(self, shard: int, taken: list[int], *, row_id: int | None = None) -> None:
        """Take pending events of ``shard`` (or the row ``row_id`` alone) and apply them in
        one transaction; ``taken`` gets the ids of the rows taken, also when it fails."""
        pipeline = self.pipeline
        with pipeline.database.transaction(durable=False) as session:
            now = pipeline.clock()
            rows = inbox.take(session, shard, limit=BATCH, now_ms=now, row_id=row_id)
            taken.extend(int(row.id) for row in rows)
            incoming: list[Incoming] = []
            read_ids: list[int] = []
            for row in rows:
                native = inbox.native_event(row)
                try:
                    read = self._read(native, row.received_at_ms)
                except Exception as exc:  # the plugin cannot read this payload: a poison event
                    inbox.park(session, row.id, f"{type(exc).__name__}: {exc}", now)
                    EVENTS_PROCESSED.labels(native.platform, "failed").inc()
                    logger.warning("inbox event %s parked: %s", row.id, failure_site(exc))
                    continue
                incoming.append(read)
                read_ids.append(int(row.id))
            applied = apply_events(session, incoming, accept_hold_ms=pipeline.accept_hold_ms)
            inbox.applied(session, read_ids)
        pipeline.deliveries_written(session)
        committed = pipeline.clock()
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
        self.holds.schedule_releases(holds)
        self.auto_accept.created(incoming, applied)

    def _apply_alone(self, shard: int, row_id: int) -> None:
        """Apply one inbox event in a transaction of its own; park it with its error when
        that fails for any other reason than an outage."""
        try:
            self._apply(shard, [], row_id=row_id)
        except Exception as exc:
            if is_outage(exc):
                raise
            pipeline = self.pipeline
            with pipeline.database.transaction() as session:
                now = pipeline.clock()
                rows = inbox.take(session, shard, limit=1, now_ms=now, row_id=row_id)
                for row in rows:
                    inbox.park(session, row.id, error_text(exc), now)
                    EVENTS_PROCESSED.labels(row.platform, "failed").inc()
            # the type only: a database error's text may carry the event's values
            logger.warning("inbox event %s parked: %s", row_id, type(exc).__name__)

    def _read(self, native: NativeEvent, received_at_ms: int) -> Incoming:
        """The canonical event of a native one, with the order's price and details where
        the plugin reads them."""
        platform = self.pipeline.registry.platform(native.platform)
        event = platform.event(native)
        price = details = None
        if platform.supports(Capability.PRICE_BREAKDOWN):
            config = self.pipeline.config.plugin_config(native.platform)
            price = platform.price_breakdown(native, config)
        if platform.supports(Capability.ORDER_DETAILS):
            config = self.pipeline.config.plugin_config(native.platform)
            details = platform.order_details(native, config)
        return Incoming(event, received_at_ms, price, details)

"""Pull compensation (SPEC §2.1, 推拉结合): what a platform failed to push, pulled; orders
missing their full order or stuck, read again; all of it into the inbox as pushes go.

One worker at a time pulls (a lease row in the database), every ``pull_interval_seconds``:
each store of each platform whose plugin has ``pull_events``, from where the last
successful pull of that store started (less :data:`OVERLAP_MS`); a pull's receipt is
confirmed to the platform only once its events are committed. Then the orders of
platforms with ``fetch_order`` that were first seen without their full order, or that
stopped moving before a settled state, are read again. Pulled and fetched events carry
the idempotency keys their pushes would have, so whatever arrives twice applies once.
A store whose channel is unauthorized is neither pulled nor read again (the round's log
line names it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from waimai_bridge.errors import failure_site
from waimai_bridge.metrics import PULL_FAILURES, PULLED_EVENTS
from waimai_bridge.models import (
    Capability,
    NativeEvent,
)
from waimai_bridge.pipeline.credentials import Authorizations, ChannelUnauthorized
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.periodic import LeasedJob
from waimai_bridge.pulled import (
    OrderRef,
    PullReceipt,
    PullRequest,
)
from waimai_bridge.store import pulls

logger = logging.getLogger(__name__)

OVERLAP_MS = 5 * 60_000
"""How far before the last pull's start the next one starts: a message the platform
timestamps a little before it was offered is not missed."""
MAX_ROUNDS = 20
"""Pulls of one store in a row while the platform says it holds more."""
REFETCH_BATCH = 50
"""Orders read again in one round, at most."""


@dataclass
class Round:
    """What one round of pulls and fetches did."""

    pulled: int = 0
    """Events pulled (missed pushes)."""
    fetched: int = 0
    """Events read by fetching orders again."""
    new: int = 0
    """Of the events pulled and fetched, those new to the inbox."""
    failed: list[str] = field(default_factory=list)
    """``platform/store`` (or ``platform/order``) whose pull or fetch failed."""
    unauthorized: set[str] = field(default_factory=set)
    """``platform/store`` skipped: the store's channel is unauthorized."""


class Puller(LeasedJob[Round]):
    """Pulls and re-fetches for one process's pipeline; :meth:`start` does a round every
    ``interval_s`` seconds in a background thread (when it holds the lease) until
    :meth:`stop`."""

    lease = "pull"

    def __init__(
        self, pipeline: Pipeline, *, interval_s: float, refetch_after_ms: int,
        authorizations: Authorizations | None = None,
    ) -> None:  # fmt: skip
        super().__init__(pipeline, interval_s=interval_s)
        self.refetch_after_ms = refetch_after_ms
        self.authorizations = authorizations or Authorizations(pipeline)

    def platforms(self, capability: Capability) -> list[str]:
        """The configured platforms whose plugin has ``capability``."""
        registry, configured = self.pipeline.registry, self.pipeline.config.platforms
        return sorted(
            name
            for name, platform in registry.platforms.items()
            if name in configured and platform.supports(capability)
        )

    def stores(self, platform: str) -> list[str]:
        """The stores bound to ``platform``."""
        return sorted(self.pipeline.config.plugin_config(platform).stores)

    def pull_store(self, platform: str, store_id: str, *, since_ms: int | None = None) -> Round:
        """Pull one store's missed pushes into the inbox, confirm them, and move its
        cursor (from ``since_ms`` when given, else from the cursor). Raises
        :class:`ChannelUnauthorized` for a store whose channel is unauthorized."""
        pipeline = self.pipeline
        plugin = pipeline.registry.platform(platform)
        config = self.authorizations.config_for(platform, store_id)
        started = pipeline.clock()
        if since_ms is None:
            with pipeline.database.transaction() as session:
                since_ms = max(0, pulls.pull_since(session, platform, store_id) - OVERLAP_MS)
        done = Round()
        for _ in range(MAX_ROUNDS):
            answer = plugin.pull_events(PullRequest(store_id=store_id, since_ms=since_ms), config)
            done.pulled += len(answer.events)
            done.new += self._write(platform, "pull", answer.events)
            if answer.receipt is not None and plugin.supports(Capability.CONFIRM_PULL):
                receipt = PullReceipt(store_id=store_id, receipt=answer.receipt)
                plugin.confirm_pull(receipt, config)
            if not answer.more:
                break
        with pipeline.database.transaction() as session:
            pulls.pulled(session, platform, store_id, since_ms=started, now_ms=pipeline.clock())
        return done

    def refetch(self) -> Round:
        """Read again the orders that want it (missing their full order, or stuck)."""
        pipeline = self.pipeline
        now = pipeline.clock()
        with pipeline.database.transaction() as session:
            due = pulls.refetch_due(
                session, self.platforms(Capability.FETCH_ORDER),
                missing_before_ms=now - int(self.interval_s * 1000),
                stuck_before_ms=now - self.refetch_after_ms,
                fetched_before_ms=now - self.refetch_after_ms, limit=REFETCH_BATCH,
            )  # fmt: skip
        done = Round()
        tried: list[int] = []
        for order in due:
            try:
                one = self.fetch(order.platform, order.store_id, order.platform_order_id)
            except ChannelUnauthorized:
                done.unauthorized.add(f"{order.platform}/{order.store_id}")
            except Exception as exc:  # one order's failure is that order's alone
                logger.warning("fetch of a %s order failed: %s", order.platform, failure_site(exc))
                PULL_FAILURES.labels(order.platform, "fetch").inc()
                done.failed.append(f"{order.platform}/{order.platform_order_id}")
            else:
                done.fetched, done.new = done.fetched + one.fetched, done.new + one.new
            tried.append(order.id)
        with pipeline.database.transaction() as session:
            pulls.fetched(session, tried, now_ms=pipeline.clock())
        return done

    def fetch(self, platform: str, store_id: str, platform_order_id: str) -> Round:
        """Read one order from its platform into the inbox: how many events it read, and how
        many were new. Raises :class:`ChannelUnauthorized` for a store whose channel is
        unauthorized."""
        plugin = self.pipeline.registry.platform(platform)
        config = self.authorizations.config_for(platform, store_id)
        order = OrderRef(store_id=store_id, platform_order_id=platform_order_id)
        fetched = plugin.fetch_order(order, config)
        if fetched is None:
            return Round()
        events = list(fetched.events)
        return Round(fetched=len(events), new=self._write(platform, "fetch", events))

    def work(self) -> Round:
        """A round of pulls of every store, then of re-fetches."""
        done = Round()
        for platform in self.platforms(Capability.PULL_EVENTS):
            for store_id in self.stores(platform):
                try:
                    one = self.pull_store(platform, store_id)
                except ChannelUnauthorized:
                    done.unauthorized.add(f"{platform}/{store_id}")
                    continue
                except Exception as exc:  # the platform or the store's token: the next round
                    logger.warning("pull of %s store %s failed: %s", platform, store_id,
                                   failure_site(exc))  # fmt: skip
                    done.failed.append(f"{platform}/{store_id}")
                    PULL_FAILURES.labels(platform, "pull").inc()
                    continue
                done.pulled, done.new = done.pulled + one.pulled, done.new + one.new
        fetched = self.refetch()
        done.fetched, done.new = fetched.fetched, done.new + fetched.new
        done.failed += fetched.failed
        done.unauthorized |= fetched.unauthorized
        return done

    def report(self, done: Round) -> None:
        """Log a round that found something, and the channels it skipped."""
        if done.pulled or done.fetched or done.failed:
            logger.info("pulled %s, fetched %s, new %s, failed %s",
                        done.pulled, done.fetched, done.new, done.failed)  # fmt: skip
        if done.unauthorized:
            logger.warning("not pulled or fetched, the channel is unauthorized: %s",
                           sorted(done.unauthorized))  # fmt: skip

    def _write(self, platform: str, source: str, events: Iterable[NativeEvent]) -> int:
        """Write events to the inbox as a push's, wake their shards; how many were new."""
        events = list(events)
        if not events:
            return 0
        new, shards = write_pushes(self.pipeline, [(events, self.pipeline.clock())])
        self.pipeline.wake(*shards)
        PULLED_EVENTS.labels(platform, source, "new").inc(new)
        PULLED_EVENTS.labels(platform, source, "duplicate").inc(len(events) - new)
        return new

"""The sweep: every few seconds, send again what a lost message left behind (stale inbox
events, overdue accept-hold releases, outbound actions, subscriber deliveries, and the
auto-accept of a new order)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from waimai_bridge.metrics import SWEPT
from waimai_bridge.pipeline.actions import ActionWorker
from waimai_bridge.pipeline.auto_accept import AutoAccept
from waimai_bridge.pipeline.deliveries import Deliverer
from waimai_bridge.pipeline.holds import Hold, HoldReleases
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.store import inbox
from waimai_bridge.store.holds import overdue_holds

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000
"""Stale inbox events, overdue holds and stale actions one sweep looks at, at most."""


@dataclass(frozen=True)
class Swept:
    """What one sweep sent again."""

    events: int
    releases: int
    actions: int = 0
    deliveries: int = 0
    accepts: int = 0


class Sweeper:
    """Sweeps one process's pipeline; :meth:`start` does it every ``interval_s`` seconds in
    a background thread until :meth:`stop`."""

    def __init__(
        self,
        pipeline: Pipeline,
        holds: HoldReleases,
        actions: ActionWorker,
        deliverer: Deliverer,
        auto_accept: AutoAccept | None = None,
        *,
        stale_after_ms: int = 60_000,
        interval_s: float = 15.0,
    ) -> None:
        self.pipeline = pipeline
        self.holds = holds
        self.actions = actions
        self.deliverer = deliverer
        self.auto_accept = auto_accept
        self.stale_after_ms = stale_after_ms
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waimai-sweeper", daemon=True)

    def sweep(self) -> Swept:
        """Send again what lost messages left behind: inbox events pending for longer than
        ``stale_after_ms``, holds whose release is that overdue, stale outbound actions and
        subscriber deliveries."""
        pipeline = self.pipeline
        now = pipeline.clock()
        with pipeline.database.transaction() as session:
            shards = inbox.stale(
                session, enqueued_before_ms=now - self.stale_after_ms, now_ms=now,
                limit=SWEEP_BATCH, shard_of=pipeline.shard_of,
            )  # fmt: skip
            holds = overdue_holds(
                session, accept_hold_ms=pipeline.accept_hold_ms,
                before_ms=now - self.stale_after_ms, limit=SWEEP_BATCH,
            )  # fmt: skip
        pipeline.wake(*shards, force=True)
        self.holds.schedule_releases([Hold(*hold, release_at_ms=now) for hold in holds])
        SWEPT.labels("event").inc(sum(shards.values()))
        SWEPT.labels("release").inc(len(holds))
        return Swept(
            events=sum(shards.values()),
            releases=len(holds),
            actions=self.actions.sweep(stale_after_ms=self.stale_after_ms, limit=SWEEP_BATCH),
            deliveries=int(self.deliverer.sweep(stale_after_ms=self.stale_after_ms)),
            accepts=0
            if self.auto_accept is None
            else self.auto_accept.sweep(stale_after_ms=self.stale_after_ms, limit=SWEEP_BATCH),
        )

    def start(self) -> None:
        """Start sweeping in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop, and wait for a sweep under way to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                swept = self.sweep()
            except Exception:  # the database or broker is down: try again next round
                logger.warning("sweep failed; retrying in %ss", self._interval_s, exc_info=True)
                continue
            if any(vars(swept).values()):
                logger.info("swept: %s", swept)

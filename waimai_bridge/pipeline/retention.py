"""The scheduled purge (SPEC §9): one worker at a time, every ``[retention]
interval_minutes``, removes the work done longer ago than the configured ages."""

from __future__ import annotations

import logging

from waimai_bridge.metrics import PURGED
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.periodic import LeasedJob
from waimai_bridge.store.retention import Cutoffs, Purged, purge

logger = logging.getLogger(__name__)


class Purger(LeasedJob[Purged]):
    """Purges for one process's pipeline; :meth:`start` does a round every
    ``interval_minutes`` in a background thread (when it holds the lease) until
    :meth:`stop`."""

    lease = "purge"

    def __init__(self, pipeline: Pipeline) -> None:
        self.settings = pipeline.config.retention
        super().__init__(pipeline, interval_s=self.settings.interval_minutes * 60)

    def work(self) -> Purged:
        """Purge every kind whose age is set, in batches, and count what went."""
        cutoffs = Cutoffs.of(self.settings, self.pipeline.clock())
        return purge(
            self.pipeline.database, cutoffs, batch_size=self.settings.batch_size,
            progress=_counted,
        )  # fmt: skip

    def report(self, done: Purged) -> None:
        """One line when anything was purged."""
        if done.total:
            logger.info(
                "purged %d processed inbox rows, %d delivered updates, %d event payloads",
                done.inbox, done.deliveries, done.payloads,
            )  # fmt: skip


def _counted(kind: str, rows: int) -> None:
    if rows:
        PURGED.labels(kind).inc(rows)

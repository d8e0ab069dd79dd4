"""The anomaly rules evaluated on a schedule (SPEC §9): one worker at a time, every
``[anomalies] interval_seconds``, opens and resolves the anomalies of
:data:`~waimai_bridge.store.anomaly_rules.RULES`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from waimai_bridge.models import PlatformState
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.periodic import LeasedJob
from waimai_bridge.store.anomalies import evaluate, remap_unmapped
from waimai_bridge.store.anomaly_rules import RULES, Window

logger = logging.getLogger(__name__)

BATCH = 1000
"""Anomalies one rule opens in a round, and open ones read per page, at most."""

RIDER_STATES = frozenset(
    {
        PlatformState.RIDER_AWAITING_PICKUP,
        PlatformState.RIDER_AT_STORE,
        PlatformState.RIDER_DELIVERING,
        PlatformState.RIDER_DELIVERED,
    }
)


@dataclass
class Evaluated:
    """What a round did, by rule: opened and resolved anomalies."""

    opened: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    remapped: int = 0


class AnomalyEvaluator(LeasedJob[Evaluated]):
    """Evaluates the anomaly rules for one process's pipeline; :meth:`start` does a round
    every ``[anomalies] interval_seconds`` (when it holds the lease) until :meth:`stop`."""

    lease = "anomalies"

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline, interval_s=pipeline.config.anomalies.interval_seconds)

    def window(self) -> Window:
        """The time, thresholds and platform facts a round measures against."""
        settings = self.pipeline.config.anomalies
        riders, requests = set(), {}
        for name, platform in self.pipeline.registry.platforms.items():
            manifest = platform.manifest
            if any(RIDER_STATES & set(code.maps_to) for code in manifest.native_codes):
                riders.add(name)
            if manifest.request_deadlines:
                deadline = min(manifest.request_deadlines.values())
                requests[name] = max(deadline - settings.request_margin_minutes, 1.0)
        return Window(
            now_ms=self.pipeline.clock(), settings=settings,
            rider_platforms=frozenset(riders), request_minutes=requests,
        )  # fmt: skip

    def work(self) -> Evaluated:
        """Map lines whose SKU is known now, then evaluate each rule not disabled, each in
        a transaction of its own."""
        database, disabled = self.pipeline.database, self.pipeline.config.anomalies.disabled
        done = Evaluated()
        with database.transaction() as session:
            done.remapped = remap_unmapped(session)
        window = self.window()
        for rule in RULES:
            if rule.name in disabled:
                continue
            with database.transaction() as session:
                opened, resolved = evaluate(session, rule, window, limit=BATCH)
            self.pipeline.deliveries_written(session)
            if opened:
                done.opened[rule.name.value] = opened
            if resolved:
                done.resolved[rule.name.value] = resolved
        return done

    def report(self, done: Evaluated) -> None:
        """Log a round that opened or resolved anything."""
        if done.opened or done.resolved or done.remapped:
            logger.info("anomalies opened %s, resolved %s, lines mapped %s",
                        done.opened, done.resolved, done.remapped)  # fmt: skip

"""A running bridge: its config, plugins, database, broker and pipeline, and the embedded
worker that runs in-process when the broker is."""

from __future__ import annotations

import gc
from typing import Any

import dramatiq

from waimai_bridge.clock import Clock, system_clock
from waimai_bridge.config import Config
from waimai_bridge.pipeline.actions import ActionWorker
from waimai_bridge.pipeline.anomalies import AnomalyEvaluator
from waimai_bridge.pipeline.apply import ShardApplier
from waimai_bridge.pipeline.auto_accept import AutoAccept
from waimai_bridge.pipeline.broker import IDLE_WAIT_MS, make_broker
from waimai_bridge.pipeline.credentials import Authorizations, Renewer
from waimai_bridge.pipeline.deliveries import Deliverer
from waimai_bridge.pipeline.holds import GATHER_RELEASES_MS, HoldReleases
from waimai_bridge.pipeline.messages import GATHER_EVENTS_MS, Pipeline
from waimai_bridge.pipeline.periodic import LeasedJob
from waimai_bridge.pipeline.pulls import Puller
from waimai_bridge.pipeline.retention import Purger
from waimai_bridge.pipeline.sweeper import Sweeper
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.store.database import Database


def settle_heap() -> None:
    """Exempt what start-up allocated (modules, schemas, table metadata: it lives as long as
    the process) from the garbage collector's full collections, which would walk all of it
    every few seconds (docs/performance.md). For the bridge's own
    processes (``serve``, ``worker``), not for a process that embeds the app."""
    gc.collect()
    gc.freeze()


class Bridge:
    """Everything one process of the bridge needs, built from the config."""

    def __init__(
        self,
        config: Config,
        registry: PluginRegistry,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.config = config
        self.registry = registry
        self.clock = clock
        self.database = Database(config.bridge.database_url)
        self.broker = make_broker(config.bridge.broker_url)
        # on a shared broker a shard's events gather, and a worker gathers releases; the
        # embedded worker takes each push's events and sends each batch's releases
        self.pipeline = Pipeline(
            database=self.database,
            broker=self.broker,
            registry=registry,
            config=config,
            clock=clock,
            gather_events_ms=0 if self.embedded else GATHER_EVENTS_MS,
        )
        self.holds = HoldReleases(
            self.pipeline, gather_ms=0 if self.embedded else GATHER_RELEASES_MS
        )
        self.authorizations = Authorizations(self.pipeline)
        self.actions = ActionWorker(self.pipeline, self.authorizations)
        self.auto_accept = AutoAccept(self.pipeline, self.actions)
        self.applier = ShardApplier(self.pipeline, self.holds, self.auto_accept)
        self.deliverer = Deliverer(self.pipeline)
        self.sweeper = Sweeper(
            self.pipeline, self.holds, self.actions, self.deliverer, self.auto_accept,
            stale_after_ms=int(config.bridge.resend_after_seconds * 1000),
            interval_s=config.bridge.sweep_interval_seconds,
        )  # fmt: skip
        self.puller = Puller(
            self.pipeline, interval_s=config.bridge.pull_interval_seconds,
            refetch_after_ms=int(config.bridge.refetch_after_minutes * 60_000),
            authorizations=self.authorizations,
        )  # fmt: skip
        self.anomalies = AnomalyEvaluator(self.pipeline)
        self.purger = Purger(self.pipeline)
        self.renewer = Renewer(self.authorizations)
        self._worker: dramatiq.Worker | None = None

    @property
    def scheduled(self) -> list[LeasedJob[Any]]:
        """The scheduled jobs this config turns on (interval above 0)."""
        return [job for job in self.jobs if job.interval_s > 0]

    @property
    def jobs(self) -> list[LeasedJob[Any]]:
        """Every scheduled job: pulls, anomaly rules, the purge, credential renewals."""
        return [self.puller, self.anomalies, self.purger, self.renewer]

    @property
    def embedded(self) -> bool:
        """Whether the queue is in-process (no broker URL): then this process works it."""
        return not self.config.bridge.broker_url

    def start_worker(
        self,
        *,
        shards: set[int] | None = None,
        threads: int = 2,
        prefetch: int = 64,
    ) -> None:
        """Consume the shard queues (all, or ``shards``) in this process, sweep, and do the
        scheduled jobs whose interval is above 0 (pulls, anomaly rules, the purge, credential
        renewals) when it is their turn."""
        worker = dramatiq.Worker(
            self.broker,
            queues=self.pipeline.queues(shards),
            worker_threads=threads,
            worker_timeout=IDLE_WAIT_MS,
        )
        worker.queue_prefetch = prefetch
        worker.start()
        self._worker = worker
        self.sweeper.start()
        for job in self.scheduled:
            job.start()

    def stop(self) -> None:
        """Stop the worker, sweeper and scheduled jobs (if running), close the broker and
        the database."""
        self.sweeper.stop()
        for job in self.jobs:
            job.stop()
        if self._worker is not None:
            self._worker.stop()
            self.holds.send_gathered_releases()
        self.broker.close()
        self.database.dispose()

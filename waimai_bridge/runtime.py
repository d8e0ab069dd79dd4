"""A running bridge: its config, plugins, database, broker and pipeline, and the embedded
worker that runs in-process when the broker is."""

from __future__ import annotations

import gc
from dataclasses import replace

import dramatiq

from waimai_bridge.clock import Clock, system_clock
from waimai_bridge.config import Config
from waimai_bridge.pipeline.actions import ActionWorker
from waimai_bridge.pipeline.actors import GATHER_EVENTS_MS, SWEEP_BATCH, Pipeline, Swept
from waimai_bridge.pipeline.broker import IDLE_WAIT_MS, make_broker
from waimai_bridge.pipeline.deliveries import Deliverer
from waimai_bridge.pipeline.releases import GATHER_RELEASES_MS
from waimai_bridge.pipeline.sweeper import Sweeper
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.store.database import Database


def settle_heap() -> None:
    """Exempt what start-up allocated (modules, schemas, table metadata: it lives as long as
    the process) from the garbage collector's full collections, which walked all of it
    (a worker paused ≈ 0.1 s every few seconds; ≈ 15 ms after this). For the bridge's own
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
        self.pipeline = Pipeline(
            database=self.database,
            broker=self.broker,
            registry=registry,
            config=config,
            clock=clock,
            stale_after_ms=int(config.bridge.resend_after_seconds * 1000),
            # on a shared broker a shard's events gather, and a worker gathers releases; the
            # embedded worker takes each push's events and sends each batch's releases
            gather_releases_ms=0 if self.embedded else GATHER_RELEASES_MS,
            gather_events_ms=0 if self.embedded else GATHER_EVENTS_MS,
        )
        self.actions = ActionWorker(self.pipeline)
        self.deliverer = Deliverer(self.pipeline)
        self._worker: dramatiq.Worker | None = None
        self._sweeper: Sweeper | None = None

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
        """Consume the shard queues (all, or ``shards``) in this process, and sweep."""
        worker = dramatiq.Worker(
            self.broker,
            queues=self.pipeline.queues(shards),
            worker_threads=threads,
            worker_timeout=IDLE_WAIT_MS,
        )
        worker.queue_prefetch = prefetch
        worker.start()
        self._worker = worker
        self._sweeper = Sweeper(self.sweep, interval_s=self.config.bridge.sweep_interval_seconds)
        self._sweeper.start()

    def sweep(self) -> Swept:
        """Send again what lost messages left behind: inbox events, accept-hold releases,
        outbound actions and subscriber deliveries."""
        swept = self.pipeline.sweep()
        stale_after_ms = self.pipeline.stale_after_ms
        return replace(
            swept,
            actions=self.actions.sweep(stale_after_ms=stale_after_ms, limit=SWEEP_BATCH),
            deliveries=int(self.deliverer.sweep(stale_after_ms=stale_after_ms)),
        )

    def stop(self) -> None:
        """Stop the worker and sweeper (if running), close the broker and the database."""
        if self._sweeper is not None:
            self._sweeper.stop()
        if self._worker is not None:
            self._worker.stop()
            self.pipeline.releases.send_gathered_releases()
        self.broker.close()
        self.database.dispose()

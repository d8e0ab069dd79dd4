"""Jobs one worker at a time does on a schedule (pulls, anomaly rules, the purge, credential
renewals): a lease row in the database says which process has the turn, and a background
thread runs a round every interval while it holds it."""

from __future__ import annotations

import logging
import os
import socket
import threading
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from waimai_bridge.errors import failure_site
from waimai_bridge.metrics import JOB_ROUNDS
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.store import leases

logger = logging.getLogger(__name__)

Done = TypeVar("Done")


class LeasedJob(ABC, Generic[Done]):
    """A job done every ``interval_s`` seconds by whichever process holds the lease
    ``lease`` (subclasses name it); :meth:`start` runs it in a background thread until
    :meth:`stop`."""

    lease: str
    """The lease's name: one per kind of job."""

    def __init__(self, pipeline: Pipeline, *, interval_s: float) -> None:
        self.pipeline = pipeline
        self.interval_s = interval_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[-64:]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"waimai-{self.lease}", daemon=True)

    @abstractmethod
    def work(self) -> Done:
        """One round of the job (the caller holds the lease)."""

    @abstractmethod
    def report(self, done: Done) -> None:
        """Log what a round of the background thread did, if worth a line."""

    def round(self) -> Done | None:
        """A round of the job if this process holds the lease (None when another does)."""
        pipeline = self.pipeline
        ttl_ms = int(self.interval_s * 2000) + 60_000
        with pipeline.database.transaction() as session:
            if not leases.take_lease(
                session, self.lease, self.holder, now_ms=pipeline.clock(), ttl_ms=ttl_ms
            ):
                return None
        return self.work()

    def start(self) -> None:
        """Run rounds in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop, wait for a round under way to finish, and give the lease up."""
        self._stop.set()
        if not self._thread.is_alive():
            return
        self._thread.join(timeout=60)
        try:
            with self.pipeline.database.transaction() as session:
                leases.release_lease(session, self.lease, self.holder)
        except Exception:  # the database is gone: the lease runs out by itself
            logger.warning("could not give the %s lease up", self.lease, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                done = self.round()
            except Exception as exc:  # the database is down: try again next round
                logger.warning("%s round failed: %s", self.lease, failure_site(exc))
                JOB_ROUNDS.labels(self.lease, "failed").inc()
                continue
            if done is not None:
                JOB_ROUNDS.labels(self.lease, "done").inc()
                self.report(done)

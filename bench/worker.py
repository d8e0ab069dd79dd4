"""``waimai-bridge worker`` as the benchmark runs it: it also notes each event's
push-to-commit latency, as the skeleton's actor notes its push-to-consumed latency.

The worker observes that latency for its ``waimai_push_to_commit_seconds`` histogram
once the event's transaction has committed; this records every observation too, and sends
them every :data:`FLUSH_S` seconds to the Redis list :data:`LATENCIES` as
``"<received at, ms since the epoch> <latency, ms>"``. Run as
``python -m bench.worker <the arguments of waimai-bridge>``, with ``BENCH_REDIS_URL`` set.
"""

from __future__ import annotations

import os
import threading
import time

import redis
from prometheus_client import Histogram

from waimai_bridge.cli import main
from waimai_bridge.metrics import PUSH_TO_COMMIT_SECONDS
from waimai_bridge.pipeline import apply

LATENCIES = "bench:commit_latencies_ms"
FLUSH_S = 0.1


class RecordedHistogram:
    """A histogram whose observations are also kept, to be sent to Redis."""

    def __init__(self, histogram: Histogram, client: redis.Redis) -> None:
        self._histogram = histogram
        self._client = client
        self._seen: list[str] = []
        threading.Thread(target=self._flush, name="bench-latencies", daemon=True).start()

    def observe(self, seconds: float) -> None:
        """Observe, and keep, one push-to-commit latency."""
        self._histogram.observe(seconds)
        latency_ms = seconds * 1000
        self._seen.append(f"{time.time() * 1000 - latency_ms:.0f} {latency_ms:.0f}")

    def _flush(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            seen, self._seen = self._seen, []
            if seen:
                self._client.rpush(LATENCIES, *seen)


if __name__ == "__main__":
    client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    # the name the worker's actors observe the latency through
    recorded = RecordedHistogram(PUSH_TO_COMMIT_SECONDS, client)
    apply.PUSH_TO_COMMIT_SECONDS = recorded  # type: ignore[attr-defined,assignment]
    main()

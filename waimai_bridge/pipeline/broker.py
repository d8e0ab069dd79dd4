"""The message broker: Redis in production, Dramatiq's in-process stub broker when embedded."""

from __future__ import annotations

from dramatiq import Broker, Consumer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, q_name
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

MIN_BACKOFF_MS = 500
MAX_BACKOFF_MS = 60_000
MAX_RETRIES = 20
TIME_LIMIT_MS = 60_000


DELAY_POLL_MS = MIN_BACKOFF_MS
"""The longest an idle delay queue goes unpolled. A delayed message is fetched ahead of
its time and held by the worker until due, so this adds nothing to any delay of at least
this long (retries, accept holds), and spares most of the polling of idle queues."""


class ShardedRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, polling idle delay queues less often than the queues
    themselves (each shard queue has a delay queue: half of a worker's consumers)."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """A consumer of ``queue_name``, idle-polling at most every ``timeout`` ms (every
        :data:`DELAY_POLL_MS` at least, for a delay queue)."""
        if queue_name == dq_name(q_name(queue_name)):
            timeout = max(timeout, DELAY_POLL_MS)
        return super().consume(queue_name, prefetch, timeout)


def make_broker(url: str) -> Broker:
    """A broker for ``url``: ``""`` is the in-process broker, ``redis://…`` a Redis one.

    Transient failures are retried with exponential backoff (0.5 s up to a minute, 20
    times); the inbox sweeper picks up whatever still slips through.
    """
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS, max_retries=MAX_RETRIES),
    ]
    if not url:
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return ShardedRedisBroker(url=url, middleware=middleware)  # type: ignore[no-untyped-call]
    raise ValueError(
        f"broker_url must be empty (in-process) or a redis:// URL, not {url.split(':', 1)[0]}://…"
    )

"""The message broker: Redis in production, Dramatiq's in-process stub broker when embedded."""

from __future__ import annotations

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
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
        return RedisBroker(url=url, middleware=middleware)  # type: ignore[no-untyped-call]
    raise ValueError(
        f"broker_url must be empty (in-process) or a redis:// URL, not {url.split(':', 1)[0]}://…"
    )

"""The message broker: Redis in production, Dramatiq's in-process stub broker when embedded."""

from __future__ import annotations

import heapq
import time

import redis
from dramatiq import Broker, ConnectionClosed, Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from redis.exceptions import NoScriptError

MIN_BACKOFF_MS = 500
MAX_BACKOFF_MS = 60_000
MAX_RETRIES = 20
TIME_LIMIT_MS = 60_000


REDIS_CONNECT_TIMEOUT_S = 5
"""How long connecting to Redis may take before the call fails (and is retried)."""
REDIS_TIMEOUT_S = 10
"""How long one Redis command may wait for its answer: longer than a consumer's wait for
its doorbell (:data:`IDLE_WAIT_MS`), so that only a dead connection times out."""
REDIS_HEALTH_CHECK_S = 30
"""A connection idle this long is checked before it is used again."""
IDLE_WAIT_MS = 1000
"""How long a consumer of an idle queue waits for its doorbell before it looks anyway (for
a message no enqueue rang for, such as one Dramatiq requeued from a dead worker)."""
GATHER_MS = "gather_ms"
"""A message option: a consumer hands the message to its worker no sooner than this many
milliseconds after it was sent (its ``message_timestamp``), and holds it this long at most
(should the sender's clock be ahead). Unlike Dramatiq's ``eta`` the message does not pass
through the delay queue: it waits in its consumer, and its queue's later messages behind
it. Honoured by :class:`DoorbellRedisBroker`'s consumers."""


class DoorbellRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, with a doorbell per queue: an idle consumer waits on it in
    Redis (``BLPOP``) instead of polling the queue, and every enqueue rings it.

    Dramatiq's consumers poll an idle queue with backoff; with a queue per shard and a delay
    queue for each, that polling cost a worker more CPU than its work at moderate rates,
    and a short backoff was the only bound on the latency an idle queue adds.
    """

    @property
    def consumer_class(self) -> type[Consumer]:
        """The consumers of this broker."""
        return _DoorbellConsumer

    def do_enqueue(self, queue_name: str, message_id: str, data: bytes) -> None:
        """Put a message on ``queue_name`` (Dramatiq's dispatch script, as its
        ``RedisBroker.enqueue`` does) and ring the queue's doorbell, in one round trip."""
        dispatch = self.scripts["dispatch"]
        unpack = self._max_unpack_size()  # type: ignore[no-untyped-call]
        # the script's arguments as Dramatiq's RedisBroker._dispatch passes them (2.x)
        arguments = [
            "enqueue", current_millis(), queue_name, self.broker_id, self.heartbeat_timeout,
            self.dead_message_ttl, self._should_do_maintenance("enqueue"),
            unpack, message_id, data,
        ]  # fmt: skip
        doorbell = self.doorbell(queue_name)
        pipeline = self.client.pipeline(transaction=False)
        pipeline.evalsha(dispatch.sha, 1, self.namespace, *arguments)
        pipeline.lpush(doorbell, b"1")
        pipeline.ltrim(doorbell, 0, 0)  # rung once is enough
        try:
            pipeline.execute()
        except NoScriptError:  # a Redis that lost its scripts (restarted): load it again
            dispatch(keys=[self.namespace], args=arguments)

    def doorbell(self, queue_name: str) -> str:
        """The Redis key of ``queue_name``'s doorbell."""
        return f"{self.namespace}:waimai.doorbell.{queue_name}"


class _DoorbellConsumer(_RedisConsumer):
    """A consumer that, once a fetch came back empty, waits for its queue's doorbell before
    it fetches again, or for its idle timeout at most.

    A consumer of a delay queue also comes back when one of the delayed messages it handed
    out falls due: its worker moves them to their queue between two calls.
    """

    def __init__(
        self, broker: DoorbellRedisBroker, queue_name: str, prefetch: int, timeout: int
    ) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self._doorbell = broker.doorbell(queue_name)
        self._idle = False
        self._look_at = 0.0
        self._due: list[int] = []  # the etas of the delayed messages handed out (a heap)

    def __next__(self) -> MessageProxy | None:
        if self._idle:
            rung = self._wait()
            if rung is None and time.monotonic() < self._look_at:
                return None  # the worker's turn: delayed messages that fell due meanwhile
            self.misses = 0  # fetch at once, not after Dramatiq's growing backoff
        asked = 0 if self.message_cache else self.prefetch - self.outstanding_message_count
        message: MessageProxy | None = super().__next__()  # type: ignore[no-untyped-call]
        if message is not None and "eta" in message.options:
            eta = message.options["eta"]
            heapq.heappush(self._due, eta if isinstance(eta, int) else current_millis())
        # the queue is idle when a fetch came back empty although there was room, or with
        # fewer messages than it asked for (it took them all: an enqueue since rang the
        # doorbell), so the next call waits for the doorbell instead of fetching nothing
        drained = message is not None and len(self.message_cache) + 1 < asked
        self._idle = drained or (message is None and self.outstanding_message_count < self.prefetch)
        if self._idle:
            self._look_at = time.monotonic() + self.timeout / 1000
        if message is not None and GATHER_MS in message.options:
            _hold(message, message.options[GATHER_MS])
        return message

    def _wait(self) -> list[bytes] | None:
        """Wait for the doorbell until the idle timeout's look or the next delayed message
        falls due, whichever comes first; the ring, or None."""
        while self._due and self._due[0] <= current_millis():
            heapq.heappop(self._due)  # due already: the worker moved it after the last call
        wait_s = self._look_at - time.monotonic()
        if self._due:
            wait_s = min(wait_s, (self._due[0] - current_millis()) / 1000)
        if wait_s <= 0:
            return None
        try:
            # at least a millisecond: Redis would take a shorter timeout for none, forever
            rung: list[bytes] | None = self.broker.client.blpop(
                [self._doorbell], timeout=max(wait_s, 0.001)
            )
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        return rung


def _hold(message: MessageProxy, gather_ms: int) -> None:
    """Wait until ``message`` is ``gather_ms`` old, or ``gather_ms`` at most."""
    wait_ms = min(gather_ms, message.message_timestamp + gather_ms - current_millis())
    if wait_ms > 0:
        time.sleep(wait_ms / 1000)


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
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            health_check_interval=REDIS_HEALTH_CHECK_S,
        )
        return DoorbellRedisBroker(client=client, middleware=middleware)  # type: ignore[no-untyped-call]
    raise ValueError(
        f"broker_url must be empty (in-process) or a redis:// URL, not {url.split(':', 1)[0]}://…"
    )

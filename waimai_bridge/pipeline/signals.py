"""Shard signals: at most one "work is waiting" message per shard in its queue.

A worker takes every pending inbox event of a shard in one batch, so one message per push
would mostly wake workers for nothing. Instead the web raises the shard's signal after it
commits a push and sends a message only when the signal was down; a worker lowers the
signal *before* it reads the pending events. Every committed event is therefore either
read by a batch that started after its commit, or gets a message of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Protocol

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker

SIGNAL_TTL_SECONDS = 30
"""A raised signal whose message was lost stops blocking new messages after this long."""


class ShardSignals(Protocol):
    """Per-shard flags shared by every process on the same broker."""

    def raise_signals(self, shards: Collection[int]) -> set[int]:
        """Raise the shards' signals; those that were down (send them a message)."""

    def lower(self, shard: int) -> None:
        """Lower the shard's signal (a worker is about to read its pending events)."""


class LocalSignals:
    """Signals of the in-process broker."""

    def __init__(self) -> None:
        self._raised: set[int] = set()
        self._lock = threading.Lock()

    def raise_signals(self, shards: Collection[int]) -> set[int]:
        """Raise the shards' signals; those that were down."""
        with self._lock:
            were_down = set(shards) - self._raised
            self._raised.update(shards)
            return were_down

    def lower(self, shard: int) -> None:
        """Lower the shard's signal."""
        with self._lock:
            self._raised.discard(shard)


class RedisSignals:
    """Signals kept in the broker's Redis, next to the queues they guard."""

    def __init__(self, broker: RedisBroker) -> None:
        self._client = broker.client
        self._prefix = f"{broker.namespace}:waimai.signal."

    def raise_signals(self, shards: Collection[int]) -> set[int]:
        """Raise the shards' signals (one round trip); those that were down."""
        ordered = sorted(set(shards))
        pipeline = self._client.pipeline(transaction=False)
        for shard in ordered:
            pipeline.set(f"{self._prefix}{shard}", b"1", nx=True, ex=SIGNAL_TTL_SECONDS)
        return {
            shard for shard, was_set in zip(ordered, pipeline.execute(), strict=True) if was_set
        }

    def lower(self, shard: int) -> None:
        """Lower the shard's signal."""
        self._client.delete(f"{self._prefix}{shard}")


def signals_for(broker: Broker) -> ShardSignals:
    """The signals that work with ``broker``."""
    return RedisSignals(broker) if isinstance(broker, RedisBroker) else LocalSignals()

"""Store-pinned queues (seed 000 §三): every event of a store goes to the same queue.

The shard is a stable hash of the store id (CRC-32, the same in every process and Python
version), so it only changes when the shard count does.
"""

from __future__ import annotations

import zlib

QUEUE_PREFIX = "waimai.shard."
DELIVERY_QUEUE = "waimai.deliveries"
"""The queue of subscriber deliveries: not store-pinned, consumed by every worker."""
PROCESS_SHARD = "waimai.process_shard"
"""The actor that applies a shard's pending inbox events (on the shard's queue)."""
DELIVER = "waimai.deliver"
"""The actor that POSTs due subscriber updates (on :data:`DELIVERY_QUEUE`)."""


def shard_of(store_id: str, shards: int) -> int:
    """The shard of a store, ``0 <= shard < shards``."""
    return zlib.crc32(store_id.encode("utf-8")) % shards


def queue_name(shard: int) -> str:
    """The Dramatiq queue of a shard, e.g. ``waimai.shard.3``."""
    return f"{QUEUE_PREFIX}{shard}"

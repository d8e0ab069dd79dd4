"""The read benchmark's client: a mix of order API calls at a steady rate over keep-alive
connections, each call's latency noted by its kind.

Like the push generator (:mod:`bench.load`) it speaks just enough HTTP/1.1 to stay light
on the machine it shares with what it measures. The calls (:data:`CALLS`):

- ``list_first``: ``GET /api/v1/orders``, the first page;
- ``list_next``: the page after the connection's last unfiltered page (its ``next_cursor``;
  a walk starts at a random order);
- ``list_store``, ``list_state``, ``list_platform``, ``list_since``: a first page filtered by
  a store, a state, a platform, or updated since a moment between ten minutes and a week ago;
- ``show``: ``GET /api/v1/orders/{id}`` of a random order;
- ``platform_order``: ``GET /api/v1/platform-orders/{platform}/{platform_order_id}`` of one.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import uvloop

CALLS: tuple[tuple[str, float], ...] = (
    ("list_first", 0.05), ("list_next", 0.15), ("list_store", 0.1), ("list_state", 0.1),
    ("list_platform", 0.05), ("list_since", 0.05), ("show", 0.35), ("platform_order", 0.15),
)  # fmt: skip
"""Each kind of call's share of the calls."""
LISTS = frozenset(kind for kind, _ in CALLS if kind.startswith("list_"))
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Sample:
    """What the calls pick from: orders (id, platform, platform order id), and the stores,
    states and platforms the database holds."""

    orders: list[tuple[int, str, str]]
    stores: list[str]
    states: list[str]
    platforms: list[str]


@dataclass
class Reads:
    """What a read run measured: latencies by kind of call, and the answers that were not
    200, by kind and status."""

    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0


def path_of(kind: str, sample: Sample, generator: random.Random, cursor: str | None) -> str:
    """The path and query of a call of ``kind``; ``cursor``: the connection's walk."""
    if kind == "list_first":
        return "/api/v1/orders"
    if kind == "list_next":
        start = cursor or str(generator.choice(sample.orders)[0] - 1)
        return f"/api/v1/orders?cursor={start}"
    if kind == "list_store":
        return f"/api/v1/orders?store_id={generator.choice(sample.stores)}"
    if kind == "list_state":
        return f"/api/v1/orders?state={generator.choice(sample.states)}"
    if kind == "list_platform":
        return f"/api/v1/orders?platform={generator.choice(sample.platforms)}"
    if kind == "list_since":
        since = time.time_ns() // 1_000_000 - generator.randint(10, 7 * 24 * 60) * MINUTE_MS
        return f"/api/v1/orders?since={since}"
    order_id, platform, platform_order_id = generator.choice(sample.orders)
    if kind == "show":
        return f"/api/v1/orders/{order_id}"
    return f"/api/v1/platform-orders/{platform}/{platform_order_id}"


async def _connection(
    port: int, token: str, calls: asyncio.Queue[tuple[str, float]], sample: Sample,
    reads: Reads, generator: random.Random,
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    cursor: str | None = None
    try:
        while True:
            kind, due = await calls.get()
            if not kind:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            path = path_of(kind, sample, generator, cursor)
            sent = time.perf_counter()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
                .encode()
            )  # fmt: skip
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            reads.latencies_ms.setdefault(kind, []).append((time.perf_counter() - sent) * 1000)
            status = status_line.split(b" ", 2)[1].decode() if status_line else "closed"
            if status != "200":
                reads.refused[f"{kind} {status}"] += 1
            elif kind in ("list_first", "list_next"):
                cursor = json.loads(body)["next_cursor"]
    finally:
        writer.close()


async def _read(
    port: int, token: str, sample: Sample, rate: float, seconds: float, connections: int,
    seed: int,
) -> Reads:  # fmt: skip
    generator = random.Random(seed)
    kinds = generator.choices(
        [kind for kind, _ in CALLS], [share for _, share in CALLS], k=int(rate * seconds)
    )
    reads = Reads()
    calls: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    start = time.perf_counter() + 0.05
    for index, kind in enumerate(kinds):
        calls.put_nowait((kind, start + index / rate))
    for _ in range(connections):
        calls.put_nowait(("", 0.0))
    reads.started = time.time()
    await asyncio.gather(
        *(
            _connection(port, token, calls, sample, reads, random.Random(seed + number))
            for number in range(connections)
        )
    )
    reads.finished = time.time()
    return reads


def read(
    port: int, token: str, sample: Sample, *, rate: float, seconds: float,
    connections: int = 4, seed: int = 1,
) -> Reads:  # fmt: skip
    """Call the API on ``port`` of 127.0.0.1 at ``rate`` calls a second for ``seconds``,
    over ``connections`` connections; ``started`` and ``finished`` are epoch seconds."""
    return uvloop.run(_read(port, token, sample, rate, seconds, connections, seed))

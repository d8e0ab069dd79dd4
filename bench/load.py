"""Traffic for the benchmark, and a small HTTP/1.1 load generator that keeps its own CPU low.

The generator speaks just enough HTTP (keep-alive, Content-Length) to drive a server at a
few thousand requests a second from one core, so that the machine's CPU goes to the
system being measured.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import uvloop

from tests import testpay

T0 = 1_716_181_200_000

LIFECYCLES: tuple[tuple[str, ...], ...] = (
    ("order.created", "order.accepted", "kitchen.preparing", "rider.at_store",
     "rider.delivering", "rider.delivered", "order.completed"),
    ("order.created", "order.accepted", "rider.at_store", "rider.delivering",
     "order.completed", "refund.requested", "refund.agreed"),
    ("order.created", "order.accepted", "rider.delivering", "refund.requested",
     "order.completed", "refund.rejected"),
    ("order.created", "order.accepted", "cancel.requested", "cancel.agreed"),
)  # fmt: skip
"""Full order lifecycles: delivered, refunded after completion, a refund asked during
delivery and rejected, cancelled after acceptance."""

PRICE: dict[str, Any] = {
    "items": [
        {"sku_code": "SKU-1001", "platform_sku_id": "2001", "name": "宫保鸡丁", "quantity": 1,
         "unit_original": 2800, "unit_paid": 2800},
        {"sku_code": "SKU-2002", "platform_sku_id": "2002", "name": "可乐", "quantity": 2,
         "unit_original": 500, "unit_paid": 400},
    ],
    "original_amount": 4500, "packaging_fee": 200, "delivery_fee": 500,
    "merchant_discount": 300, "platform_discount": 100, "user_paid": 4100,
    "commission": 492, "merchant_income": 3308,
}  # fmt: skip
"""A new order's price, its stated total agreeing with its lines and fees (no anomaly)."""


@dataclass(frozen=True)
class Traffic:
    """Push bodies in sending order; ``unique`` is how many distinct events they carry."""

    bodies: list[bytes]
    unique: int


def traffic(
    events: int,
    *,
    stores: int,
    secret: str,
    duplicates: float = 0.05,
    seed: int = 1,
    prefix: str = "B",
) -> Traffic:
    """About ``events`` pushes of interleaved lifecycles over ``stores`` shops, with a share
    of duplicates (a platform redelivering); order ids start with ``prefix``."""
    generator = random.Random(seed)
    open_orders: list[list[bytes]] = []
    bodies: list[bytes] = []
    unique = 0
    number = 0
    while unique < events:
        if not open_orders or (len(open_orders) < 200 and generator.random() < 0.3):
            lifecycle = generator.choice(LIFECYCLES)
            order = f"{prefix}{number}"
            shop = str(100000 + number % stores)
            pushes = []
            for position, code in enumerate(lifecycle):
                extra: dict[str, object] = {"price": PRICE} if code == "order.created" else {}
                pushes.append(
                    testpay.push(
                        f"{order}:{position}",
                        order,
                        code,
                        T0 + position * 60_000,
                        shop=shop,
                        **extra,
                    )
                )
            open_orders.append(pushes)
            number += 1
        queue = generator.choice(open_orders)
        body = queue.pop(0)
        bodies.append(body)
        unique += 1
        if generator.random() < duplicates:
            bodies.append(body)
        if not queue:
            open_orders.remove(queue)
    return Traffic([_signed(body, secret) for body in bodies], unique)


def _signed(body: bytes, secret: str) -> bytes:
    return (
        b"POST /webhooks/testpay HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        + f"{testpay.SIGNATURE_HEADER}: {testpay.sign(body, secret)}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


@dataclass
class Result:
    """What a load run measured."""

    sent: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


async def _connection(
    host: str, port: int, requests: asyncio.Queue[tuple[bytes, float]], result: Result
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            request, due = await requests.get()
            if not request:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
            result.sent += 1
            if not status_line.startswith(b"HTTP/1.1 200"):
                result.failed += 1
    finally:
        writer.close()


async def _drive(
    host: str, port: int, requests: Sequence[bytes], rate: float | None, connections: int
) -> Result:
    result = Result()
    queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
    start = time.perf_counter() + 0.05
    for index, request in enumerate(requests):
        queue.put_nowait((request, start + index / rate if rate else 0.0))
    for _ in range(connections):
        queue.put_nowait((b"", 0.0))
    result.started = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, queue, result) for _ in range(connections)))
    result.finished = time.perf_counter()
    return result


def drive(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float | None = None,
    connections: int = 32,
) -> Result:
    """Send every request, as fast as the server answers (``rate`` None) or paced at
    ``rate`` per second, over ``connections`` keep-alive connections.

    The generator's garbage collector is off meanwhile: a full collection of the traffic
    it holds paused it for tens of milliseconds, and the requests in flight took that as
    latency. It runs on uvloop, as ``serve`` does: the generator shares the machine's two
    cores with what it measures, and the lighter it is, the less it takes from them.
    """
    gc.collect()
    gc.disable()
    try:
        return uvloop.run(_drive(host, port, requests, rate, connections))
    finally:
        gc.enable()


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

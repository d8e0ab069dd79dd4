"""The skeleton the bridge is measured against, on the same machine in the same run.

A bare ASGI endpoint that checks an MD5 of the body and writes one Redis entry (a Dramatiq
message), and a no-op Dramatiq actor consuming it from the same Redis: the least any
webhook-to-queue-to-worker system must do. Run as
``uvicorn bench.skeleton:app`` and ``dramatiq bench.skeleton``.

With ``SKELETON_TIMED=1`` (the latency run) each message carries when its request was
received, and the actor notes how long after that it ran, in the Redis list
:data:`LATENCIES`: the skeleton's push-to-consumed latency.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "skeleton"
SECRET = b"skeleton-secret"

broker = RedisBroker(url=os.environ.get("SKELETON_REDIS_URL", "redis://127.0.0.1:6379/14"))  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)


TIMED = os.environ.get("SKELETON_TIMED") == "1"
LATENCIES = "skeleton:latencies_ms"


@dramatiq.actor(queue_name=QUEUE)
def consume(digest: str, received_ms: float | None = None) -> None:
    """Do nothing: the cost of consuming a message is what is measured (in the latency
    run, note how long after its request was received it ran)."""
    if received_ms is not None:
        broker.client.rpush(LATENCIES, time.time() * 1000 - received_ms)


ACK = b'{"ok":true}'
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Check the body's MD5 against its header, queue one message, answer the ACK."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    received_ms = time.time() * 1000
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    digest = hashlib.md5(body + SECRET).hexdigest()
    given = dict(scope["headers"]).get(b"x-testpay-signature", b"").decode()
    hmac.compare_digest(digest, given)  # the check's cost; the bench's signature is another
    if TIMED:
        consume.send(digest, received_ms)
    else:
        consume.send(digest)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ACK})

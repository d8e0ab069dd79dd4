"""The body limit of every request: counted while it is read, before any route sees it.

A declared ``Content-Length`` over the limit is refused before a byte is read; a body sent
without one (chunked) is read up to the limit and refused the moment it passes it. Either
way the answer is a 413 and nothing behind the limit runs: no token check, no parsing, no
plugin. A body within the limit is handed on whole, as the routes would read it anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waimai_bridge.web.errors import error

MAX_BODY_BYTES = 1 << 20
"""The largest request body read, in bytes."""


class BodyLimit:
    """ASGI middleware that refuses bodies over their limit with a 413: ``limit_of`` a
    request's scope, by default :data:`MAX_BODY_BYTES` for all."""

    def __init__(
        self, app: ASGIApp, limit_of: Callable[[Scope], int] = lambda scope: MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(limit, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    answer = error(413, f"the body is larger than {limit} bytes")
    answer.headers["Connection"] = "close"  # the rest of the body is not read
    await answer(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; a value that is not a length counts as none (the body is
    then counted as it is read)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value) if len(value) <= 19 else 1 << 64
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then what the client sends next (its
    disconnect)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed

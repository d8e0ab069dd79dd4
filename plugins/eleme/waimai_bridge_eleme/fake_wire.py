"""The fake Eleme API's wire: the nop envelope of a request read and checked, the answers it
can give (scripted or not), the calls it records, and the HTTP server that carries them.

Standard library only; :class:`~waimai_bridge_eleme.testing.FakeEleme` decides the answers.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal

from waimai_bridge_eleme.signing import compact_json

API_PATH: Final = "/api/v1/"
NOP_VERSION: Final = "1.0.0"
# id = UUID in upper-case hex without dashes + "|" + epoch ms (platforms.md §2.1).
REQUEST_ID: Final = re.compile(r"[0-9A-F]{32}\|[0-9]+")
JSON_TYPE: Final = "application/json;charset=utf-8"
TEXT_TYPE: Final = "text/plain;charset=utf-8"


AnswerKind = Literal["ok", "error", "http", "slow", "drop"]


@dataclass(frozen=True)
class FakeAnswer:
    """One scripted answer of :class:`FakeEleme`; build it with the class methods."""

    kind: AnswerKind
    result: Any = None
    code: str = ""
    message: str = ""
    status: int = 200
    body: str = ""
    seconds: float = 0.0
    then: FakeAnswer | None = None

    @classmethod
    def ok(cls, result: Any = None) -> FakeAnswer:
        """Success: ``{"id": …, "result": result, "error": null}``."""
        return cls("ok", result=result)

    @classmethod
    def error(cls, code: str, message: str = "") -> FakeAnswer:
        """A platform error, HTTP 200 with ``error: {code, message}`` (e.g. ``SERVER_ERROR``,
        ``EXCEED_LIMIT``, ``BIZ_ORDER_STATUS_ERROR``)."""
        return cls("error", code=code, message=message or code)

    @classmethod
    def http(cls, status: int, body: str = "") -> FakeAnswer:
        """A bare HTTP answer with this status and text body, as from a gateway (e.g. 502)."""
        return cls("http", status=status, body=body)

    @classmethod
    def slow(cls, seconds: float, then: FakeAnswer | None = None) -> FakeAnswer:
        """Wait ``seconds`` before answering ``then`` (by default what the fake would answer)."""
        return cls("slow", seconds=seconds, then=then)

    @classmethod
    def drop(cls) -> FakeAnswer:
        """Close the connection without answering."""
        return cls("drop")


@dataclass(frozen=True)
class FakeCall:
    """One request the fake received and what it did with it.

    ``answer`` is the envelope sent back, or None for a bare HTTP answer or a dropped
    connection; ``http_status`` is None when the connection was dropped. For a request
    the fake could not read, ``action``/``token`` are ``""`` and ``params`` is empty.
    """

    action: str
    params: dict[str, Any]
    token: str
    signature_ok: bool
    request_id: str | None
    answer: dict[str, Any] | None
    http_status: int | None
    path: str = API_PATH


@dataclass(frozen=True)
class Reply:
    """What goes back on the wire: an envelope (or another JSON object), a bare HTTP answer
    or nothing (``status`` None = drop), possibly after a delay, with any extra headers."""

    status: int | None
    envelope: dict[str, Any] | None = None
    text: str = ""
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> tuple[bytes, str]:
        if self.envelope is not None:
            return compact_json(self.envelope).encode("utf-8"), JSON_TYPE
        return self.text.encode("utf-8"), TEXT_TYPE


@dataclass(frozen=True)
class Request:
    """A readable nop envelope."""

    request_id: str
    action: str
    token: str
    app_key: str
    timestamp: int
    metas: dict[str, Any]
    params: dict[str, Any]
    signature: str


class Refused(Exception):
    """The request is answered with a platform error before any action runs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def envelope(self, request_id: str | None) -> dict[str, Any]:
        return envelope_error(request_id, self.code, self.message)


def envelope_error(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "id": request_id if isinstance(request_id, str) else None,
        "result": None,
        "error": {"code": code, "message": message},
    }


def envelope_ok(request_id: str, result: Any) -> dict[str, Any]:
    return {"id": request_id, "result": result, "error": None}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_request(body: bytes) -> Request:
    """The nop envelope of a body; raises :class:`Refused` (ILLEGAL_REQUEST) otherwise."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise Refused("ILLEGAL_REQUEST", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise Refused("ILLEGAL_REQUEST", "the body is not a JSON object")

    def field(name: str, kind: type, what: str) -> Any:
        value = document.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise Refused("ILLEGAL_REQUEST", f"{name} must be {what}")
        return value

    if document.get("nop") != NOP_VERSION:
        raise Refused("ILLEGAL_REQUEST", f"nop must be {NOP_VERSION!r}")
    request_id = field("id", str, "a string")
    if not REQUEST_ID.fullmatch(request_id):
        raise Refused("ILLEGAL_REQUEST", "id must be an upper-case hex UUID without dashes|ms")
    action = field("action", str, "a string")
    if not action:
        raise Refused("ILLEGAL_REQUEST", "action must not be empty")
    token = field("token", str, "a string")
    metas = field("metas", dict, "an object")
    params = field("params", dict, "an object")
    signature = field("signature", str, "a string")
    app_key = metas.get("app_key")
    if not isinstance(app_key, str):
        raise Refused("ILLEGAL_REQUEST", "metas.app_key must be a string")
    timestamp = metas.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise Refused("ILLEGAL_REQUEST", "metas.timestamp must be an integer")
    return Request(request_id, action, token, app_key, timestamp, metas, params, signature)


def loose_id(body: bytes) -> str | None:
    """The ``id`` of a body that is not a valid envelope, to echo it back if it has one."""
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError:
        return None
    request_id = document.get("id") if isinstance(document, dict) else None
    return request_id if isinstance(request_id, str) else None


class Handler(BaseHTTPRequestHandler):
    """One connection to the fake: every method goes to the server's ``serve``."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the platform's gateway
    server_version = "FakeEleme/1.0"
    timeout = 30  # an idle keep-alive connection is closed after this many seconds

    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def do_POST(self) -> None:
        self.server.serve(self)

    def do_GET(self) -> None:
        self.server.serve(self)

    def do_PUT(self) -> None:
        self.server.serve(self)

    def do_DELETE(self) -> None:
        self.server.serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: requests carry access tokens, and tests read ``calls`` instead."""


class Server(ThreadingHTTPServer):
    """The fake's HTTP server on 127.0.0.1 (a free port), a thread per connection."""

    daemon_threads = True

    def __init__(self, serve: Callable[[Handler], None]) -> None:
        """``serve`` answers each request a handler reads."""
        self.serve = serve
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake the handlers still waiting on a kept-alive or slow connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is normal here (timeouts, drops); report the rest.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def send(handler: Handler, stopping: threading.Event, reply: Reply) -> None:
    """Write ``reply`` on the handler's connection, after its delay unless the fake stops."""
    if reply.delay and stopping.wait(reply.delay):
        reply = Reply(None)  # stopping: do not answer late
    if reply.status is None:
        handler.close_connection = True
        return
    body, content_type = reply.body()
    try:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers:
            handler.send_header(name, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
    except OSError:  # the client gave up (e.g. timed out on a slow answer)
        handler.close_connection = True

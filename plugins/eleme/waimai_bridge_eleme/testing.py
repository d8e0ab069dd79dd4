"""A local fake of the Eleme shop open platform (nop 1.0.0), for tests and demos.

- :class:`FakeEleme` answers API calls the way the platform does (platforms.md §2): it
  checks the envelope, the request signature, the app key, the token and the timestamp,
  answers the order actions, records every request and plays scripted answers.
- :func:`push_envelope` / :func:`push_body` build signed pushes (platforms.md §1).
- :data:`FIXTURE_SETTINGS` / :data:`FIXTURE_STORES` are the configuration fixtures are made of.
- :func:`fake_platform` is the fake as the contract harness drives it.

Standard library only; the signatures come from :mod:`waimai_bridge_eleme.signing`.
The fake never logs, and never puts a secret (or the signature it expected) in an answer.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self
from urllib.parse import urlsplit

from waimai_bridge_eleme import assumptions as facts
from waimai_bridge_eleme.fake_orders import EFFECTS, FakeOrders
from waimai_bridge_eleme.fake_pulls import FailedPushes
from waimai_bridge_eleme.signing import compact_json, push_signature, request_signature

if TYPE_CHECKING:
    from collections.abc import Iterator

    from waimai_bridge.plugin_api import PluginConfig

__all__ = [
    "ACTION_METHODS",
    "API_PATH",
    "CANCEL_TYPES",
    "DEFAULT_TIMESTAMP_TOLERANCE_SECONDS",
    "FIXTURE_SETTINGS",
    "FIXTURE_STORES",
    "ORDER_ACTIONS",
    "FakeAnswer",
    "FakeCall",
    "FakeEleme",
    "fake_platform",
    "push_body",
    "push_envelope",
]

API_PATH: Final = "/api/v1/"
NOP_VERSION: Final = "1.0.0"

# [G] Eleme documents INVALID_TIMESTAMP for clock skew but not the window (platforms.md §2.1, §6.8).
DEFAULT_TIMESTAMP_TOLERANCE_SECONDS: Final = 300.0

# OInvalidateType, the ``type`` of eleme.order.cancelOrderLite (platforms.md §2.3).
CANCEL_TYPES: Final = frozenset(
    {
        "others",
        "fakeOrder",
        "contactUserFailed",
        "foodSoldOut",
        "restaurantClosed",
        "distanceTooFar",
        "restaurantTooBusy",
        "forceRejectOrder",
        "deliveryFault",
        "notSatisfiedDeliveryRequirement",
    }
)

FIXTURE_SETTINGS: Final[Mapping[str, str | int]] = {
    "app_key": "wYO4C8ZLzB",
    "app_secret": "demo-eleme-secret-0123456789abcdef",
    "app_id": 58137347,
    "api_base": "https://open-api-sandbox.shop.ele.me/api/v1/",
}
"""The ``[platforms.eleme]`` table of the fixtures (the secret is the samples' secret)."""

FIXTURE_STORES: Final[Mapping[str, Mapping[str, str | int]]] = {
    "S001": {"shop_id": 160012345, "token": "5e1e7a0c9b3d4f2a8c6e0b1d3f5a7c91"},
    "S002": {"shop_id": 160012346, "token": "7c3a9e1f5b0d2c4e6a8f1b3d5e7a9c02"},
}
"""The Eleme part of the fixtures' stores: store id → ``shop_id`` and access ``token``."""

# id = UUID in upper-case hex without dashes + "|" + epoch ms (platforms.md §2.1).
_REQUEST_ID: Final = re.compile(r"[0-9A-F]{32}\|[0-9]+")
# metas.timestamp: seconds in the doc, PHP and Go SDKs; milliseconds in the Java and Python
# SDKs (platforms.md §2.1). Values this large can only be milliseconds.
_MILLISECONDS_FROM: Final = 10**11
_JSON_TYPE: Final = "application/json;charset=utf-8"
_TEXT_TYPE: Final = "text/plain;charset=utf-8"
_DEFAULT_USER_ID: Final = 249698004053764774
_POLL_SECONDS: Final = 0.02  # how soon stop() is noticed


# --------------------------------------------------------------------------- answers and calls

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


# --------------------------------------------------------------------------- the order actions


class _Invalid(Exception):
    """A business parameter is missing or invalid (→ VALIDATION_FAILED)."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(f"invalid param {param}: {problem}")
        self.param = param


def _text_param(params: Mapping[str, Any], name: str, *, empty: bool = False) -> str:
    if name not in params:
        raise _Invalid(name, "missing")
    value = params[name]
    if not isinstance(value, str):
        raise _Invalid(name, "must be a string")
    if not value and not empty:
        raise _Invalid(name, "must not be empty")
    return value


def _order_id(params: Mapping[str, Any]) -> str:
    # Order ids exceed 2**53, so they travel as strings (platforms.md §1.1); the fake refuses
    # numbers to catch precision bugs [G: the platform may coerce them].
    return _text_param(params, "orderId")


def _confirm(fake: FakeEleme, request: _Request) -> Any:
    _order_id(request.params)
    return None


def _cancel(fake: FakeEleme, request: _Request) -> Any:
    params = request.params
    _order_id(params)
    if _text_param(params, "type") not in CANCEL_TYPES:
        raise _Invalid("type", "not an OInvalidateType")
    # [G] The SDKs always send remark (Java sends null when absent); it may be empty.
    if "remark" not in params:
        raise _Invalid("remark", "missing")
    if params["remark"] is not None and not isinstance(params["remark"], str):
        raise _Invalid("remark", "must be a string")
    return None


def _agree_refund(fake: FakeEleme, request: _Request) -> Any:
    _order_id(request.params)
    return None


def _disagree_refund(fake: FakeEleme, request: _Request) -> Any:
    _order_id(request.params)
    _text_param(request.params, "reason")
    return None


def _get_order(fake: FakeEleme, request: _Request) -> Any:
    _order_id(request.params)
    return None


def _app_request(fake: FakeEleme, request: _Request, param: str) -> Mapping[str, Any]:
    """The one object parameter of a msgNew method, for the fake's app (platforms.md §1.4)."""
    if set(request.params) != {param}:
        raise _Invalid(param, "must be the only parameter")
    value = request.params[param]
    if not isinstance(value, dict):
        raise _Invalid(param, "must be an object")
    app_id = value.get(facts.PUSH_FAIL_QUERY_APP_ID)
    if not isinstance(app_id, int) or isinstance(app_id, bool):
        raise _Invalid(f"{param}.{facts.PUSH_FAIL_QUERY_APP_ID}", "must be a number")
    if fake.app_id is not None and app_id != fake.app_id:
        raise _Invalid(f"{param}.{facts.PUSH_FAIL_QUERY_APP_ID}", "is not this app's")
    return value


def _push_fail(fake: FakeEleme, request: _Request) -> Any:
    _app_request(fake, request, facts.PUSH_FAIL_QUERY_PARAM)
    return None


def _confirm_pull(fake: FakeEleme, request: _Request) -> Any:
    value = _app_request(fake, request, facts.CONFIRM_PARAM)
    ids = value.get(facts.CONFIRM_IDS_FIELD)
    if not isinstance(ids, list) or not ids:
        raise _Invalid(f"{facts.CONFIRM_PARAM}.{facts.CONFIRM_IDS_FIELD}", "must be a list")
    return None


def _non_reached(fake: FakeEleme, request: _Request) -> Any:
    app_id = request.params.get("appId")
    if not isinstance(app_id, int) or isinstance(app_id, bool):
        raise _Invalid("appId", "must be a number")
    if fake.app_id is not None and app_id != fake.app_id:
        raise _Invalid("appId", "is not this app's")
    return None


_Action = Callable[["FakeEleme", "_Request"], Any]

_ACTIONS: Final[Mapping[str, _Action]] = {
    "eleme.order.confirmOrderLite": _confirm,
    "eleme.order.cancelOrderLite": _cancel,
    "eleme.order.agreeRefundLite": _agree_refund,
    "eleme.order.disagreeRefundLite": _disagree_refund,
    "eleme.order.getOrder": _get_order,
    "eleme.msgNew.getPushFailMsg": _push_fail,
    "eleme.msgNew.confirmPullMsg": _confirm_pull,
    "eleme.message.getNonReachedOMessages": _non_reached,
}
"""Each method the fake answers by itself and the check of its parameters."""
ORDER_ACTIONS: Final = frozenset(_ACTIONS)
"""The actions the fake answers by itself; any other action needs a scripted answer."""
ACTION_METHODS: Final = frozenset(EFFECTS)
"""The methods that act on an order (the others only read or confirm)."""
_EMPTY_TOKEN_METHODS: Final = frozenset(
    {"eleme.msgNew.getPushFailMsg", "eleme.msgNew.confirmPullMsg"}
)
"""Methods of the app, not of a shop: called with an empty token ([S-E5g])."""


# --------------------------------------------------------------------------- the fake


@dataclass(frozen=True)
class _Reply:
    """What goes back on the wire: an envelope, a bare HTTP answer or nothing (``status``
    None = drop), possibly after a delay."""

    status: int | None
    envelope: dict[str, Any] | None = None
    text: str = ""
    delay: float = 0.0

    def body(self) -> tuple[bytes, str]:
        if self.envelope is not None:
            return compact_json(self.envelope).encode("utf-8"), _JSON_TYPE
        return self.text.encode("utf-8"), _TEXT_TYPE


@dataclass(frozen=True)
class _Request:
    """A readable nop envelope."""

    request_id: str
    action: str
    token: str
    app_key: str
    timestamp: int
    metas: dict[str, Any]
    params: dict[str, Any]
    signature: str


class _Refused(Exception):
    """The request is answered with a platform error before any action runs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def envelope(self, request_id: str | None) -> dict[str, Any]:
        return _envelope_error(request_id, self.code, self.message)


def _envelope_error(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "id": request_id if isinstance(request_id, str) else None,
        "result": None,
        "error": {"code": code, "message": message},
    }


def _envelope_ok(request_id: str, result: Any) -> dict[str, Any]:
    return {"id": request_id, "result": result, "error": None}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_envelope(body: bytes) -> _Request:
    """The nop envelope of a body; raises :class:`_Refused` (ILLEGAL_REQUEST) otherwise."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise _Refused("ILLEGAL_REQUEST", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise _Refused("ILLEGAL_REQUEST", "the body is not a JSON object")

    def field(name: str, kind: type, what: str) -> Any:
        value = document.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _Refused("ILLEGAL_REQUEST", f"{name} must be {what}")
        return value

    if document.get("nop") != NOP_VERSION:
        raise _Refused("ILLEGAL_REQUEST", f"nop must be {NOP_VERSION!r}")
    request_id = field("id", str, "a string")
    if not _REQUEST_ID.fullmatch(request_id):
        raise _Refused("ILLEGAL_REQUEST", "id must be an upper-case hex UUID without dashes|ms")
    action = field("action", str, "a string")
    if not action:
        raise _Refused("ILLEGAL_REQUEST", "action must not be empty")
    token = field("token", str, "a string")
    metas = field("metas", dict, "an object")
    params = field("params", dict, "an object")
    signature = field("signature", str, "a string")
    app_key = metas.get("app_key")
    if not isinstance(app_key, str):
        raise _Refused("ILLEGAL_REQUEST", "metas.app_key must be a string")
    timestamp = metas.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise _Refused("ILLEGAL_REQUEST", "metas.timestamp must be an integer")
    return _Request(request_id, action, token, app_key, timestamp, metas, params, signature)


class FakeEleme:
    """A local Eleme API server (nop 1.0.0) on 127.0.0.1, for tests and demos.

    Use it as a context manager or with :meth:`start` / :meth:`stop`; the client POSTs
    the nop envelope to :attr:`api_base`. Every request is checked in this order, the
    first failure being the answer (HTTP 200, platforms.md §2.4):

    - a body that is not a nop 1.0.0 envelope → ``ILLEGAL_REQUEST``;
    - ``metas.app_key`` not the fake's → ``UNAUTHORIZED``;
    - a signature that is not exactly :func:`request_signature` of the request as
      decoded from the body → ``INVALID_SIGNATURE``;
    - ``metas.timestamp`` (seconds, or milliseconds as some SDKs send) further than
      ``timestamp_tolerance`` seconds from ``clock()`` → ``INVALID_TIMESTAMP``;
    - a token not among ``tokens`` (when given) → ``UNAUTHORIZED``;
    - a token for the msgNew methods, which take an empty one (platforms.md §1.4), or an
      empty one for the others → ``UNAUTHORIZED``;
    - bad parameters of an action in :data:`ORDER_ACTIONS` → ``VALIDATION_FAILED``.

    A request that passes all of these takes the next answer scripted for its action
    (:meth:`script`), if any; otherwise it gets the default: success for
    :data:`ORDER_ACTIONS` (``getOrder`` answers the order as the fake knows it, or
    ``ORDER_NOT_FOUND``; the pull methods answer and confirm what :meth:`pushed` failed to
    deliver, :mod:`waimai_bridge_eleme.fake_pulls`), ``METHOD_NOT_ALLOWED`` for any other
    action. So a badly signed (or otherwise refused) request never consumes
    a scripted answer. Other paths answer HTTP 404, other methods 405. The default answer
    (also after a ``slow`` one) acts on the order: an action repeated on an order already
    in its state gets the "already" error the plugin assumes Eleme answers
    (:mod:`waimai_bridge_eleme.fake_orders`).
    """

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        tokens: Iterable[str] | None = None,
        timestamp_tolerance: float = DEFAULT_TIMESTAMP_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
        orders: Iterable[Mapping[str, Any]] = (),
        app_id: int | None = None,
    ) -> None:
        """``tokens``: the access tokens the platform knows (None: any token); ``clock``:
        the platform's time in epoch seconds; ``orders``: OOrders ``getOrder`` returns;
        ``app_id``: the app the pull methods serve (None: any)."""
        self.app_key = app_key
        self.app_id = app_id
        self._app_secret = app_secret
        self.tokens: frozenset[str] | None = None if tokens is None else frozenset(tokens)
        self.timestamp_tolerance = timestamp_tolerance
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: list[FakeCall] = []
        self._scripts: dict[str, deque[FakeAnswer]] = {}
        self._orders = FakeOrders()
        self._failed = FailedPushes()
        for order in orders:
            self.put_order(order)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @classmethod
    def for_fixtures(cls, **options: Any) -> FakeEleme:
        """A fake with the app key and secret of :data:`FIXTURE_SETTINGS` that knows the
        tokens of :data:`FIXTURE_STORES`; ``options`` go to the constructor."""
        options.setdefault("tokens", [str(store["token"]) for store in FIXTURE_STORES.values()])
        options.setdefault("app_id", int(FIXTURE_SETTINGS["app_id"]))
        return cls(
            app_key=str(FIXTURE_SETTINGS["app_key"]),
            app_secret=str(FIXTURE_SETTINGS["app_secret"]),
            **options,
        )

    def __repr__(self) -> str:
        state = f"serving {self.api_base}" if self._server is not None else "stopped"
        return f"<FakeEleme app_key={self.app_key!r} {state}>"

    # -- lifecycle

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the fake is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(_POLL_SECONDS,), name="FakeEleme", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and free the port; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the fake listens on (only while running)."""
        if self._server is None:
            raise RuntimeError("the fake is not running")
        return int(self._server.server_address[1])

    @property
    def api_base(self) -> str:
        """The URL the nop envelope is POSTed to, ``http://127.0.0.1:PORT/api/v1/``."""
        return f"http://127.0.0.1:{self.port}{API_PATH}"

    # -- what happened

    @property
    def calls(self) -> list[FakeCall]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, action: str) -> list[FakeCall]:
        """The requests received for ``action``, oldest first."""
        return [call for call in self.calls if call.action == action]

    def reset(self) -> None:
        """Forget the calls, the scripted answers not played yet and what the actions did
        to each order (stored orders stay)."""
        with self._lock:
            self._calls.clear()
            self._scripts.clear()
            self._orders.clear()

    def open_request(self, order_id: str) -> None:
        """A new cancel/refund application of the order: agreeing or rejecting it works
        again (a second application after the first was answered)."""
        with self._lock:
            self._orders.open_request(order_id)

    # -- scripting

    def script(self, action: str, *answers: FakeAnswer) -> None:
        """Queue answers for ``action``, played one per accepted request to it, in order;
        once they are used up the action gets its default answer again."""
        with self._lock:
            self._scripts.setdefault(action, deque()).extend(answers)

    def pending(self, action: str) -> int:
        """How many scripted answers for ``action`` are not played yet."""
        with self._lock:
            return len(self._scripts.get(action, ()))

    def put_order(self, order: Mapping[str, Any]) -> None:
        """Store an OOrder (keyed by its ``id``) for ``eleme.order.getOrder``."""
        with self._lock:
            self._orders.put(order)

    def order(self, order_id: str) -> dict[str, Any] | None:
        """The OOrder ``getOrder`` answers now (None: the fake does not know the order)."""
        with self._lock:
            return self._orders.order(order_id)

    def pushed(self, push: Mapping[str, Any], *, delivered: bool) -> None:
        """The platform sent (``delivered``) or failed to send this push: its order takes it
        in either way, and an undelivered one is offered by the pull methods until it is
        confirmed (or handed, :mod:`waimai_bridge_eleme.fake_pulls`). ``push`` is a push
        fixture's request, ``{"method", "url", "kind", "query", "headers", "body"}``; a
        body that is no Eleme push envelope is ignored."""
        envelope = _pushed_envelope(str(push.get("body") or ""))
        if envelope is None:
            return
        push_type, message = envelope.pop("_type"), envelope.pop("_message")
        with self._lock:
            if message is not None:
                self._orders.pushed(push_type, message)
            if delivered:
                self._failed.delivered(str(envelope.get("requestId")))
            else:
                self._failed.failed(envelope, push_type)

    def offered(self) -> int:
        """How many undelivered pushes a pull method still offers."""
        with self._lock:
            return self._failed.offered()

    # -- serving

    def _serve(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        if path != API_PATH:
            handler.close_connection = True
            self._send(handler, self._record_http(path, 404, "not found"))
            return
        if handler.command != "POST":
            handler.close_connection = True
            self._send(handler, self._record_http(path, 405, "method not allowed"))
            return
        length = handler.headers.get("Content-Length")
        if length is None or not length.isdigit():
            handler.close_connection = True
            self._send(handler, self._record_http(path, 411, "length required"))
            return
        body = handler.rfile.read(int(length))
        self._send(handler, self._answer(body))

    def _record_http(self, path: str, status: int, text: str) -> _Reply:
        self._record(FakeCall("", {}, "", False, None, None, status, path))
        return _Reply(status, text=text)

    def _answer(self, body: bytes) -> _Reply:
        try:
            request = _read_envelope(body)
        except _Refused as refused:
            request_id = _loose_id(body)
            answer = refused.envelope(request_id)
            self._record(FakeCall("", {}, "", False, request_id, answer, 200))
            return _Reply(200, answer)
        expected = request_signature(
            request.action, request.token, request.metas, request.params, self._app_secret
        )
        signature_ok = hmac.compare_digest(
            expected.encode("ascii"), request.signature.encode("utf-8")
        )
        with self._lock:  # one lock: a scripted answer goes to exactly one request
            try:
                self._admit(request, signature_ok)
                reply = self._play(request)
            except _Refused as refused:
                reply = _Reply(200, refused.envelope(request.request_id))
            self._calls.append(
                FakeCall(
                    request.action,
                    request.params,
                    request.token,
                    signature_ok,
                    request.request_id,
                    reply.envelope,
                    reply.status,
                )
            )
        return reply

    def _admit(self, request: _Request, signature_ok: bool) -> None:
        # [G] An unknown app key is refused before the signature: the platform needs the app
        # to know the secret. The code for it is not documented; UNAUTHORIZED is a guess.
        if request.app_key != self.app_key:
            raise _Refused("UNAUTHORIZED", "unknown app_key")
        if not signature_ok:
            raise _Refused("INVALID_SIGNATURE", "the signature does not match")
        seconds = request.timestamp / (1000 if request.timestamp >= _MILLISECONDS_FROM else 1)
        if abs(self.clock() - seconds) > self.timestamp_tolerance:
            raise _Refused("INVALID_TIMESTAMP", "metas.timestamp is too far from the server time")
        if request.action in _EMPTY_TOKEN_METHODS:
            if request.token:  # the doc's words ([S-E5g]); the code is a guess
                raise _Refused("UNAUTHORIZED", "token 必须为空")
            return
        # [G] The code for an unknown or expired token is not documented; UNAUTHORIZED fits.
        if self.tokens is not None and request.token not in self.tokens:
            raise _Refused("UNAUTHORIZED", "invalid token")

    def _play(self, request: _Request) -> _Reply:
        """The answer to an admitted request; call with the lock held."""
        run = _ACTIONS.get(request.action)
        if run is not None:
            try:
                run(self, request)
            except _Invalid as invalid:
                raise _Refused("VALIDATION_FAILED", str(invalid)) from None
        queue = self._scripts.get(request.action)
        scripted = queue.popleft() if queue else None
        return self._reply(request, scripted)

    def _reply(self, request: _Request, answer: FakeAnswer | None) -> _Reply:
        if answer is None:
            run = _ACTIONS.get(request.action)
            if run is None:
                raise _Refused("METHOD_NOT_ALLOWED", f"unknown action {request.action}")
            already = self._orders.act(request.action, str(request.params.get("orderId")))
            if already is not None:  # a repeat, answered as the plugin assumes Eleme does
                return _Reply(200, _envelope_error(request.request_id, *already))
            return _Reply(200, _envelope_ok(request.request_id, self._result(request)))
        if answer.kind == "ok":
            return _Reply(200, _envelope_ok(request.request_id, answer.result))
        if answer.kind == "error":
            return _Reply(200, _envelope_error(request.request_id, answer.code, answer.message))
        if answer.kind == "http":
            return _Reply(answer.status, text=answer.body)
        if answer.kind == "drop":
            return _Reply(None)
        try:
            then = self._reply(request, answer.then)
        except _Refused as refused:
            then = _Reply(200, refused.envelope(request.request_id))
        return _Reply(then.status, then.envelope, then.text, then.delay + answer.seconds)

    def _result(self, request: _Request) -> Any:
        """The ``result`` of an admitted request's default answer; call with the lock held."""
        params = request.params
        if request.action == "eleme.order.getOrder":
            order = self._orders.order(str(params["orderId"]))
            if order is None:
                raise _Refused(facts.ORDER_NOT_FOUND, "订单不存在")
            return order
        if request.action == "eleme.msgNew.getPushFailMsg":
            return self._failed.push_fail()
        if request.action == "eleme.msgNew.confirmPullMsg":
            self._failed.confirm(params[facts.CONFIRM_PARAM][facts.CONFIRM_IDS_FIELD])
            return None
        if request.action == "eleme.message.getNonReachedOMessages":
            return self._failed.non_reached(request.token)
        return None

    def _record(self, call: FakeCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _send(self, handler: _Handler, reply: _Reply) -> None:
        if reply.delay and self._stopping.wait(reply.delay):
            reply = _Reply(None)  # stopping: do not answer late
        if reply.status is None:
            handler.close_connection = True
            return
        body, content_type = reply.body()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            if handler.close_connection:
                handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:  # the client gave up (e.g. timed out on a slow answer)
            handler.close_connection = True


def _pushed_envelope(body: str) -> dict[str, Any] | None:
    """A push body's envelope, with its type (``_type``) and decoded message (``_message``,
    None when it is not an object); None when the body is no push envelope."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if not isinstance(envelope, dict):
        return None
    push_type = envelope.get("type")
    if isinstance(push_type, str) and push_type.isascii() and push_type.isdigit():
        push_type = int(push_type)
    if not isinstance(push_type, int) or isinstance(push_type, bool):
        return None
    try:
        message = json.loads(envelope.get("message") or "")
    except (TypeError, ValueError):
        message = None
    return {
        **envelope,
        "_type": push_type,
        "_message": message if isinstance(message, dict) else None,
    }


def _loose_id(body: bytes) -> str | None:
    """The ``id`` of a body that is not a valid envelope, to echo it back if it has one."""
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError:
        return None
    request_id = document.get("id") if isinstance(document, dict) else None
    return request_id if isinstance(request_id, str) else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the platform's gateway
    server_version = "FakeEleme/1.0"
    timeout = 30  # an idle keep-alive connection is closed after this many seconds

    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def do_PUT(self) -> None:
        self.server.fake._serve(self)

    def do_DELETE(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: requests carry access tokens, and tests read ``calls`` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeEleme) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

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


# --------------------------------------------------------------------------- pushes

_push_ids = itertools.count(int(time.time() * 1000) * 100_000)
_push_ids_lock = threading.Lock()


def _next_push_request_id() -> str:
    # Real requestIds are 18-digit strings ("200015698900989850", platforms.md §1.1).
    with _push_ids_lock:
        return str(next(_push_ids))


def push_envelope(
    type_: int,
    message: Mapping[str, Any] | str,
    *,
    app_id: int,
    shop_id: int,
    secret: str,
    request_id: str | None = None,
    timestamp_ms: int | None = None,
    user_id: int = _DEFAULT_USER_ID,
) -> dict[str, Any]:
    """A signed Eleme push envelope (platforms.md §1.1–1.2).

    ``message`` becomes a compact JSON string (a string is used verbatim); ``request_id``
    defaults to a fresh unique string of digits, ``timestamp_ms`` to now.
    """
    envelope: dict[str, Any] = {
        "requestId": request_id if request_id is not None else _next_push_request_id(),
        "type": type_,
        "appId": app_id,
        "message": message if isinstance(message, str) else compact_json(message),
        "shopId": shop_id,
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "userId": user_id,
    }
    envelope["signature"] = push_signature(envelope, secret)
    return envelope


def push_body(
    type_: int,
    message: Mapping[str, Any] | str,
    *,
    app_id: int,
    shop_id: int,
    secret: str,
    request_id: str | None = None,
    timestamp_ms: int | None = None,
    user_id: int = _DEFAULT_USER_ID,
) -> bytes:
    """The POST body of :func:`push_envelope`: its compact JSON in UTF-8."""
    envelope = push_envelope(
        type_,
        message,
        app_id=app_id,
        shop_id=shop_id,
        secret=secret,
        request_id=request_id,
        timestamp_ms=timestamp_ms,
        user_id=user_id,
    )
    return compact_json(envelope).encode("utf-8")


# --------------------------------------------------------------------------- the harness's view


class HarnessFake:
    """A running :class:`FakeEleme` as the contract harness drives it (docs/plugin-authors.md).

    ``script`` takes an error fixture's ``answer``: ``{"error": {"code", "message"}}``,
    ``{"http": status, "body": text}``, ``{"slow": seconds}`` or ``{"drop": true}``; it
    is played to the next call of any order action (not to the reads that verify one).
    """

    def __init__(self, fake: FakeEleme) -> None:
        self.fake = fake

    def configure(self, config: PluginConfig) -> PluginConfig:
        """The config with ``api_base`` pointing at the fake."""
        return config.model_copy(
            update={"settings": {**config.settings, "api_base": self.fake.api_base}}
        )

    def script(self, answer: Mapping[str, Any]) -> None:
        """Play ``answer`` to the next order action."""
        scripted = _scripted_answer(answer)
        for action in sorted(ACTION_METHODS):
            self.fake.script(action, scripted)

    def pushed(self, push: Mapping[str, Any], *, delivered: bool) -> None:
        """The platform sent (or failed to send) this push: see :meth:`FakeEleme.pushed`."""
        self.fake.pushed(push, delivered=delivered)

    def calls(self) -> list[dict[str, Any]]:
        """The API calls received, as the harness compares them (always POSTed)."""
        return [
            {"method": "POST", "path": call.action, "params": call.params,
             "signature_ok": call.signature_ok}
            for call in self.fake.calls
        ]  # fmt: skip

    def reset(self) -> None:
        """Forget the calls and the scripted answers."""
        self.fake.reset()


def _scripted_answer(answer: Mapping[str, Any]) -> FakeAnswer:
    if "error" in answer:
        error = answer["error"]
        return FakeAnswer.error(str(error["code"]), str(error.get("message", "")))
    if "http" in answer:
        return FakeAnswer.http(int(answer["http"]), str(answer.get("body", "")))
    if "slow" in answer:
        return FakeAnswer.slow(float(answer["slow"]))
    if answer.get("drop"):
        return FakeAnswer.drop()
    raise ValueError(f"not a scripted answer of the Eleme fake: {dict(answer)!r}")


@contextlib.contextmanager
def fake_platform(config: PluginConfig) -> Iterator[HarnessFake]:
    """A running fake knowing the app key, secret and shop tokens of ``config``."""
    settings = config.settings
    tokens = [str(binding["token"]) for binding in config.stores.values() if "token" in binding]
    with FakeEleme(
        app_key=str(settings["app_key"]),
        app_secret=str(settings["app_secret"]),
        tokens=tokens,
        app_id=int(str(settings["app_id"])),
    ) as fake:
        yield HarnessFake(fake)

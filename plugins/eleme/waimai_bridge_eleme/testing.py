"""A local fake of the Eleme shop open platform (nop 1.0.0), for tests and demos.

- :class:`FakeEleme` answers API calls the way the platform does (platforms.md §2): it
  checks the envelope, the request signature, the app key, the token and the timestamp,
  answers the order actions, the order reads and the pull methods, records every request
  and plays scripted answers. Its wire is :mod:`.fake_wire`, its checks of each method
  :mod:`.fake_methods`, its orders :mod:`.fake_orders`, its undelivered pushes
  :mod:`.fake_pulls`.
- :func:`push_envelope` / :func:`push_body` build signed pushes (platforms.md §1,
  :mod:`.fake_pushes`).
- :data:`FIXTURE_SETTINGS` / :data:`FIXTURE_STORES` are the configuration fixtures are made of.
- :func:`fake_platform` is the fake as the contract harness drives it (:mod:`.fake_harness`).

Standard library only; the signatures come from :mod:`waimai_bridge_eleme.signing`.
The fake never logs, and never puts a secret (or the signature it expected) in an answer.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, urlsplit

from waimai_bridge_eleme import assumptions as facts
from waimai_bridge_eleme.fake_harness import fake_platform
from waimai_bridge_eleme.fake_methods import (
    ACTION_METHODS,
    CANCEL_TYPES,
    EMPTY_TOKEN_METHODS,
    METHODS,
    ORDER_ACTIONS,
    Invalid,
)
from waimai_bridge_eleme.fake_oauth import (
    AUTHORIZE_PATH,
    TOKEN_PATH,
    TOKEN_SCRIPT,
    AuthorizationControls,
    FakeOAuth,
    FakeTokenCall,
)
from waimai_bridge_eleme.fake_orders import FakeOrders
from waimai_bridge_eleme.fake_pulls import FailedPushes
from waimai_bridge_eleme.fake_pushes import push_body, push_envelope, pushed_envelope
from waimai_bridge_eleme.fake_wire import (
    API_PATH,
    FakeAnswer,
    FakeCall,
    Handler,
    Refused,
    Reply,
    Request,
    Server,
    envelope_error,
    envelope_ok,
    loose_id,
    read_request,
    send,
)
from waimai_bridge_eleme.signing import request_signature

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
    "FakeTokenCall",
    "fake_platform",
    "push_body",
    "push_envelope",
]

# [G] Eleme documents INVALID_TIMESTAMP for clock skew but not the window (platforms.md §2.1, §6.8).
DEFAULT_TIMESTAMP_TOLERANCE_SECONDS: Final = 300.0

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

# metas.timestamp: seconds in the doc, PHP and Go SDKs; milliseconds in the Java and Python
# SDKs (platforms.md §2.1). Values this large can only be milliseconds.
_MILLISECONDS_FROM: Final = 10**11
_POLL_SECONDS: Final = 0.02  # how soon stop() is noticed


class FakeEleme(AuthorizationControls):
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
    - a token for the msgNew methods, which take an empty one (platforms.md §1.4), or for
      the others a token the fake issued that expired or was revoked, any token revoked,
      or a token neither issued nor among ``tokens`` (when given) → ``UNAUTHORIZED``;
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

    Under :attr:`oauth_base` it serves Eleme's authorize page and token endpoint
    (:mod:`waimai_bridge_eleme.fake_oauth`): :meth:`sign_in`, :meth:`expire_in`,
    :meth:`revoke`, :meth:`script_token`, :meth:`token_outage` and :attr:`token_calls` drive
    and show them.
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
        self._oauth = FakeOAuth(app_key, app_secret, lambda: self.clock())
        for order in orders:
            self.put_order(order)
        self._server: Server | None = None
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
        self._server = Server(self._serve)
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

    @property
    def oauth_base(self) -> str:
        """Where the authorize page and the token endpoint are, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

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
        """Forget the calls (token calls too), the scripted answers not played yet, a token
        outage and what the actions did to each order (stored orders and issued tokens
        stay)."""
        with self._lock:
            self._calls.clear()
            self._oauth.calls.clear()
            self._oauth.outage = None
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
        envelope = pushed_envelope(str(push.get("body") or ""))
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

    def _serve(self, handler: Handler) -> None:
        url = urlsplit(handler.path)
        path = url.path
        if path == AUTHORIZE_PATH and handler.command == "GET":
            with self._lock:
                reply = self._oauth.authorize(parse_qs(url.query))
            send(handler, self._stopping, reply)
            return
        posted = path in (API_PATH, TOKEN_PATH)
        if not posted and path != AUTHORIZE_PATH:
            handler.close_connection = True
            send(handler, self._stopping, self._record_http(path, 404, "not found"))
            return
        if handler.command != "POST" or not posted:
            handler.close_connection = True
            send(handler, self._stopping, self._record_http(path, 405, "method not allowed"))
            return
        length = handler.headers.get("Content-Length")
        if length is None or not length.isdigit():
            handler.close_connection = True
            send(handler, self._stopping, self._record_http(path, 411, "length required"))
            return
        body = handler.rfile.read(int(length))
        if path == TOKEN_PATH:
            with self._lock:
                queue = self._scripts.get(TOKEN_SCRIPT)
                scripted = queue.popleft() if queue else None
                headers = {name.lower(): value for name, value in handler.headers.items()}
                reply = self._oauth.token(headers, body, scripted)
            send(handler, self._stopping, reply)
            return
        send(handler, self._stopping, self._answer(body))

    def _record_http(self, path: str, status: int, text: str) -> Reply:
        self._record(FakeCall("", {}, "", False, None, None, status, path))
        return Reply(status, text=text)

    def _answer(self, body: bytes) -> Reply:
        try:
            request = read_request(body)
        except Refused as refused:
            request_id = loose_id(body)
            answer = refused.envelope(request_id)
            self._record(FakeCall("", {}, "", False, request_id, answer, 200))
            return Reply(200, answer)
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
            except Refused as refused:
                reply = Reply(200, refused.envelope(request.request_id))
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

    def _admit(self, request: Request, signature_ok: bool) -> None:
        # [G] An unknown app key is refused before the signature: the platform needs the app
        # to know the secret. The code for it is not documented; UNAUTHORIZED is a guess.
        if request.app_key != self.app_key:
            raise Refused("UNAUTHORIZED", "unknown app_key")
        if not signature_ok:
            raise Refused("INVALID_SIGNATURE", "the signature does not match")
        seconds = request.timestamp / (1000 if request.timestamp >= _MILLISECONDS_FROM else 1)
        if abs(self.clock() - seconds) > self.timestamp_tolerance:
            raise Refused("INVALID_TIMESTAMP", "metas.timestamp is too far from the server time")
        if request.action in EMPTY_TOKEN_METHODS:
            if request.token:  # the doc's words ([S-E5g]); the code is a guess
                raise Refused("UNAUTHORIZED", "token 必须为空")
            return
        verdict = self._oauth.verdict(request.token)
        if verdict is False or (
            verdict is None and self.tokens is not None and request.token not in self.tokens
        ):
            raise Refused(facts.INVALID_TOKEN_ERROR, "invalid token")

    def _play(self, request: Request) -> Reply:
        """The answer to an admitted request; call with the lock held."""
        run = METHODS.get(request.action)
        if run is not None:
            try:
                run(self, request)
            except Invalid as invalid:
                raise Refused("VALIDATION_FAILED", str(invalid)) from None
        queue = self._scripts.get(request.action)
        scripted = queue.popleft() if queue else None
        return self._reply(request, scripted)

    def _reply(self, request: Request, answer: FakeAnswer | None) -> Reply:
        if answer is None:
            run = METHODS.get(request.action)
            if run is None:
                raise Refused("METHOD_NOT_ALLOWED", f"unknown action {request.action}")
            already = self._orders.act(request.action, str(request.params.get("orderId")))
            if already is not None:  # a repeat, answered as the plugin assumes Eleme does
                return Reply(200, envelope_error(request.request_id, *already))
            return Reply(200, envelope_ok(request.request_id, self._result(request)))
        if answer.kind == "ok":
            return Reply(200, envelope_ok(request.request_id, answer.result))
        if answer.kind == "error":
            return Reply(200, envelope_error(request.request_id, answer.code, answer.message))
        if answer.kind == "http":
            return Reply(answer.status, text=answer.body)
        if answer.kind == "drop":
            return Reply(None)
        try:
            then = self._reply(request, answer.then)
        except Refused as refused:
            then = Reply(200, refused.envelope(request.request_id))
        return Reply(then.status, then.envelope, then.text, then.delay + answer.seconds)

    def _result(self, request: Request) -> Any:
        """The ``result`` of an admitted request's default answer; call with the lock held."""
        params = request.params
        if request.action == "eleme.order.getOrder":
            order = self._orders.order(str(params["orderId"]))
            if order is None:
                raise Refused(facts.ORDER_NOT_FOUND, "订单不存在")
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

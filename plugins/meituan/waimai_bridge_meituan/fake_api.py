"""A local fake of the Meituan waimai API: a real HTTP server that checks each call's ``sig``,
answers as the platform does, records every call and can be scripted to fail.

Its order book (:mod:`waimai_bridge_meituan.fake_orders`) learns each order from the pushes
the fake platform sent (:meth:`FakeMeituan.pushed`) and from the actions on it, and answers
the reads (``order/getOrderDetail``, ``order/viewstatus``, ``getOrderRefundDetail``) and a
repeated action from it. Its store authorization (:mod:`waimai_bridge_meituan.fake_oauth`)
serves the consent page and the token endpoint, and, for an ISV app (``app_type="isv"``),
refuses an API call whose ``access_token`` does not work.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan.fake_oauth import OAUTH_PATHS, FakeTokens, token_refusal
from waimai_bridge_meituan.fake_orders import READ_PATHS, FakeOrders
from waimai_bridge_meituan.fake_pushes import read_push
from waimai_bridge_meituan.fixture_settings import (
    FIXTURE_APP_ID,
    FIXTURE_PUBLIC_BASE_URL,
    FIXTURE_SECRET,
)
from waimai_bridge_meituan.signing import sig, sig_matches


@dataclass(frozen=True)
class FakeAnswer:
    """One answer of the fake API: HTTP status, body, and how long it waits first."""

    status: int = 200
    body: str = facts.ACK_BODY
    delay_s: float = 0.0
    drop: bool = False
    """Close the connection without answering (a broken connection)."""
    acts: bool = False
    """The fake's own answer (after ``delay_s``): ok, acting on the order, or the "already"
    error of a repeated action; to a read, the order as the fake knows it. With ``drop``:
    the call takes effect, and its answer is lost."""
    keeps: bool = False
    """With ``acts``: the call takes effect, and this answer's status and body are sent
    instead of the fake's own."""
    location: str | None = None
    """Where a redirect sends the browser."""

    @classmethod
    def ok(cls) -> FakeAnswer:
        """Meituan's success answer to a write operation, ``{"data":"ok"}``."""
        return cls()

    @classmethod
    def error(cls, code: int, msg: str, *, status: int = 200) -> FakeAnswer:
        """Meituan's error answer ``{"data":"ng","error":{"code":…,"msg":…}}``."""
        body = {"data": "ng", "error": {"code": code, "msg": msg}}
        return cls(status=status, body=json.dumps(body, ensure_ascii=False))

    @classmethod
    def http(cls, status: int, body: str = "<html>Service Unavailable</html>") -> FakeAnswer:
        """A bare HTTP answer (a gateway's 502/503 page, say)."""
        return cls(status=status, body=body)

    @classmethod
    def slow(cls, seconds: float, then: FakeAnswer | None = None) -> FakeAnswer:
        """``then`` (by default the fake's own answer) after ``seconds``: a time-out for a
        shorter client."""
        if then is None:
            return cls(delay_s=seconds, acts=True)
        return replace(then, delay_s=seconds)

    @classmethod
    def dropped(cls) -> FakeAnswer:
        """No answer at all: the connection is closed once the request is read, and the
        call does nothing."""
        return cls(status=0, body="", drop=True)

    @classmethod
    def after_acting(cls, answer: FakeAnswer) -> FakeAnswer:
        """``answer`` (say a 700) to a call that took effect all the same: a repeat of it
        gets the "already" error."""
        return replace(answer, acts=True, keeps=True)

    @classmethod
    def lost(cls) -> FakeAnswer:
        """The call takes effect, and the connection is closed before its answer: the
        answer lost on the way back."""
        return cls(status=0, body="", drop=True, acts=True)


BAD_SIG: Final = FakeAnswer.error(703, "签名验证错误")
UNKNOWN_APP: Final = FakeAnswer.error(702, "app_id不存在")


@dataclass(frozen=True)
class FakeCall:
    """One call the fake received: the API path (``order/confirm``), the business
    parameters, the system ones, whether the sig was right, and what it answered."""

    method: str
    path: str
    params: dict[str, str]
    system: dict[str, str]
    sig_ok: bool
    answer: FakeAnswer


@dataclass(frozen=True)
class FakePush:
    """A push the fake platform sent (``delivered``) or failed to send: its kind and order."""

    kind: str
    order_id: str
    delivered: bool


@dataclass
class _Script:
    answers: dict[str, deque[FakeAnswer]] = field(default_factory=dict)
    any_path: deque[FakeAnswer] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    orders: FakeOrders = field(default_factory=FakeOrders)
    tokens: FakeTokens = field(default_factory=FakeTokens)
    outage: int | None = None


class FakeMeituan:
    """A local fake of the Meituan waimai API, for tests; use as a context manager."""

    PREFIX: Final = "/api/v1/"

    def __init__(
        self,
        *,
        app_id: str = FIXTURE_APP_ID,
        secret: str = FIXTURE_SECRET,
        public_base_url: str = FIXTURE_PUBLIC_BASE_URL,
        app_type: str = "developer",
        token_lifetime_s: int = 7200,
    ) -> None:
        self.app_id = app_id
        self.isv = app_type == "isv"
        """Whether the app is an ISV app, whose API calls must carry a working token."""
        self._secret = secret
        self.public_base_url = public_base_url
        """The bridge's URL the pushes are signed for (``pushed`` reads them with it)."""
        self.calls: list[FakeCall] = []
        self.pushes: list[FakePush] = []
        """Every push given to :meth:`pushed`, in turn."""
        self._script = _Script(tokens=FakeTokens(lifetime_s=token_lifetime_s))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeMeituan:
        """Listen on a free port of 127.0.0.1, serving from a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self)

            def do_POST(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeMeituan:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def api_base(self) -> str:
        """The API root to configure as ``api_base`` (with its trailing slash)."""
        if self._server is None:
            raise RuntimeError("the fake Meituan API is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.PREFIX}"

    # ------------------------------------------------------------------ scripting

    def script(self, path: str, *answers: FakeAnswer) -> None:
        """Answer the next calls of ``path`` with ``answers`` in turn, then ok again."""
        with self._script.lock:
            self._script.answers.setdefault(path, deque()).extend(answers)

    def script_any(self, *answers: FakeAnswer) -> None:
        """Answer the next calls, whatever their path, with ``answers`` in turn (after the
        answers scripted for a path), then ok again."""
        with self._script.lock:
            self._script.any_path.extend(answers)

    def reset(self, *, orders: bool = True) -> None:
        """Forget the calls received, the answers not played yet, a token outage and, unless
        ``orders`` is False, the pushes, every order and every token."""
        with self._script.lock:
            self._script.answers.clear()
            self._script.any_path.clear()
            self._script.outage = None
            if orders:
                self._script.orders.clear()
                self._script.tokens.clear()
                self.pushes.clear()
        self.calls.clear()

    def open_request(self, order_id: str) -> None:
        """A new refund application of the order: agreeing or rejecting it works again."""
        with self._script.lock:
            self._script.orders.open_request(order_id, now=int(time.time()))

    def pushed(self, push: Mapping[str, Any], *, delivered: bool) -> None:
        """The platform sent (``delivered``) or failed to send this push, a push fixture's
        request (``{"method", "url", "kind", "query", "headers", "body"}``): the order book
        learns what it tells either way, so reads show the order in that state. Meituan
        has no list of failed pushes, so an undelivered one is only kept in
        :attr:`pushes`."""
        read = read_push(push, secret=self._secret, public_base_url=self.public_base_url)
        if read is None:
            return
        code, message = read
        with self._script.lock:
            self._script.orders.learn(code, message, now=int(time.time()))
        kind = code.partition(".")[0]
        self.pushes.append(FakePush(kind, message.get("order_id", ""), delivered))

    @property
    def tokens(self) -> FakeTokens:
        """The codes and tokens issued (its ``lifetime_s`` may be changed between calls)."""
        return self._script.tokens

    def revoke(self, app_poi_code: str) -> None:
        """The store withdrew its consent: its tokens stop working until it consents again."""
        with self._script.lock:
            self._script.tokens.revoke(app_poi_code)

    def token_outage(self, status: int | None) -> None:
        """Until :meth:`reset` (or ``token_outage(None)``), answer every call of the consent
        page and the token endpoint with a bare HTTP ``status`` (a gateway's page)."""
        with self._script.lock:
            self._script.outage = status

    def issue_tokens(self, app_poi_code: str) -> dict[str, Any]:
        """New tokens for the store, as the token endpoint answers them."""
        with self._script.lock:
            return self._script.tokens.issue(app_poi_code)

    def calls_to(self, path: str) -> list[FakeCall]:
        """The calls of one API path, in arrival order."""
        return [call for call in self.calls if call.path == path]

    # ------------------------------------------------------------------ serving

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.removeprefix(self.PREFIX)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if handler.command == "POST":
            length = int(handler.headers.get("content-length") or 0)
            body = handler.rfile.read(length).decode("utf-8")
            pairs += parse_qsl(body, keep_blank_values=True)
        params = dict(pairs)
        names = (*facts.SYSTEM_PARAMS, facts.ACCESS_TOKEN_PARAM)
        system: dict[str, str] = {key: params.pop(key) for key in names if key in params}
        signed = {**params, **{key: value for key, value in system.items() if key != "sig"}}
        expected = sig(self.api_base + path, signed, self._secret)
        sig_ok = sig_matches(expected, system.get("sig", ""))
        if not parts.path.startswith(self.PREFIX):
            answer = FakeAnswer.http(404, "not found")
        elif system.get("app_id") != self.app_id:
            answer = UNKNOWN_APP
        elif not sig_ok or "timestamp" not in system:
            answer = BAD_SIG
        else:
            answer = self._next_answer(path, params, system.get(facts.ACCESS_TOKEN_PARAM))
        self.calls.append(FakeCall(handler.command, path, params, system, sig_ok, answer))
        if answer.delay_s:
            time.sleep(answer.delay_s)
        if answer.drop:
            handler.close_connection = True
            return
        content = answer.body.encode("utf-8")
        try:
            handler.send_response(answer.status)
            if answer.location is not None:
                handler.send_header("Location", answer.location)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
        except OSError:  # the client gave up (a time-out test)
            pass

    def _next_answer(
        self, path: str, params: Mapping[str, str], access_token: str | None
    ) -> FakeAnswer:
        with self._script.lock:
            if path in OAUTH_PATHS and self._script.outage is not None:
                return FakeAnswer.http(self._script.outage)
            waiting = self._script.answers.get(path) or self._script.any_path
            answer = waiting.popleft() if waiting else FakeAnswer(acts=True)
            if not answer.acts:
                return answer
            if path in OAUTH_PATHS:
                reply = self._script.tokens.serve(path, params)
                own = FakeAnswer(status=reply.status, body=reply.body, location=reply.location)
                return replace(own, delay_s=answer.delay_s, drop=answer.drop)
            refusal = token_refusal(access_token, self._script.tokens) if self.isv else None
            if refusal is not None:
                return FakeAnswer.error(*refusal)
            orders = self._script.orders
            if path in READ_PATHS:
                read = orders.read(path, params)
                own = (
                    FakeAnswer(body=json.dumps(read, ensure_ascii=False))
                    if isinstance(read, dict)
                    else FakeAnswer.error(int(read[0]), read[1])
                )
            else:
                already = orders.act(path, params.get("order_id", ""), now=int(time.time()))
                own = (
                    FakeAnswer.ok()
                    if already is None
                    else FakeAnswer.error(int(already[0]), already[1])
                )
            if answer.keeps:
                return answer
            return replace(own, delay_s=answer.delay_s, drop=answer.drop)

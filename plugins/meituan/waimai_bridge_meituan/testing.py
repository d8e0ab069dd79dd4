"""Test support shipped with the plugin: a local fake Meituan API, signed pushes, and the
config the fixtures in ``fixtures/`` are written for.

:class:`FakeMeituan` is a real HTTP server on 127.0.0.1 (a free port) that checks each call's
``app_id`` and ``sig`` exactly as Meituan does, answers like the platform (``{"data":"ok"}``,
or ``{"data":"ng","error":{"code":703,…}}`` for a bad sig), records every call and can be
scripted to fail (an unscripted call acts on its order, so a repeated action gets the
"already" error the plugin assumes Meituan answers: :mod:`waimai_bridge_meituan.fake_orders`)::

    with FakeMeituan() as fake:
        fake.script("order/refund/agree", FakeAnswer.error(700, "系统错误"), FakeAnswer.ok())
        settings = {**FIXTURE_SETTINGS, "api_base": fake.api_base}
        ...
        assert [call.path for call in fake.calls] == ["order/refund/agree"] * 2

:func:`signed_push` builds the form body of a push as Meituan sends it (double-encoded
fields included) for tests and demos. :func:`fake_platform` is the fake as the contract
harness drives it (:class:`HarnessFake`, whose ``script`` takes an error fixture's answer).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit

from waimai_bridge.plugin_api import PluginConfig
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan.fake_orders import FakeOrders
from waimai_bridge_meituan.signing import sig, sig_matches

FIXTURE_APP_ID: Final = "6123"
FIXTURE_SECRET: Final = "fixture-meituan-secret-0123456789"
FIXTURE_PUBLIC_BASE_URL: Final = "https://bridge.example.com"
FIXTURE_SETTINGS: Final[dict[str, Any]] = {
    "app_id": FIXTURE_APP_ID,
    "app_secret": FIXTURE_SECRET,
    "api_base": "https://waimaiopen.meituan.com/api/v1/",
    "price_semantics": "discounted",
    "api_timeout_seconds": 10,
}
"""The ``[platforms.meituan]`` table the fixtures are written for."""

FIXTURE_STORES: Final[dict[str, dict[str, Any]]] = {
    "S001": {"app_poi_code": "STORE-001"},
    "S002": {"app_poi_code": "STORE-002", "price_semantics": "original"},
}
"""The store bindings of the fixtures: S002 overrides the price semantics; pushes that
name no store go to S001, the first bound store id."""


def fixture_config(**settings: Any) -> PluginConfig:
    """The fixtures' plugin config, with ``settings`` overriding some of its keys."""
    return PluginConfig(
        platform="meituan",
        public_base_url=FIXTURE_PUBLIC_BASE_URL,
        settings={**FIXTURE_SETTINGS, **settings},
        stores={store: dict(binding) for store, binding in FIXTURE_STORES.items()},
    )


def wire_value(value: object) -> str:
    """A parameter value as Meituan sends it before URL encoding: JSON for lists and
    objects (compact, non-ASCII kept), ``str`` for the rest."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def signed_params(
    kind: str,
    params: Mapping[str, object],
    *,
    secret: str,
    public_base_url: str = FIXTURE_PUBLIC_BASE_URL,
    app_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """A push's parameters with their true values and ``app_id``, ``timestamp`` and the
    ``sig`` over the callback URL of ``kind`` added (the values Meituan signs)."""
    values = {key: wire_value(value) for key, value in params.items()}
    if app_id is not None:
        values.setdefault("app_id", app_id)
    values.setdefault("timestamp", str(int(time.time()) if timestamp is None else timestamp))
    url = public_base_url.rstrip("/") + "/webhooks/meituan/" + kind
    values["sig"] = sig(url, values, secret)
    return values


def encode_push(values: Mapping[str, str], *, double_encode: bool = True) -> bytes:
    """The form body of a push: the double-encoded fields URL-encoded once more first."""
    wire = [
        (key, quote_plus(value) if double_encode and key in facts.DOUBLE_ENCODED_FIELDS else value)
        for key, value in values.items()
    ]
    return urlencode(wire).encode()


def signed_push(
    kind: str,
    params: Mapping[str, object],
    *,
    secret: str,
    public_base_url: str = FIXTURE_PUBLIC_BASE_URL,
    app_id: str | None = None,
    timestamp: int | None = None,
    double_encode: bool = True,
) -> bytes:
    """The form body of a push of ``kind`` signed as Meituan signs it; the same string
    after ``?`` makes the GET variant. ``params`` hold the true values (lists and objects
    become JSON); ``app_id`` and ``timestamp`` are added unless ``params`` has them."""
    values = signed_params(
        kind,
        params,
        secret=secret,
        public_base_url=public_base_url,
        app_id=app_id,
        timestamp=timestamp,
    )
    return encode_push(values, double_encode=double_encode)


# --------------------------------------------------------------------------- fake API


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
    error of a repeated action."""

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
        """No answer at all: the connection is closed once the request is read."""
        return cls(status=0, body="", drop=True)


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


@dataclass
class _Script:
    answers: dict[str, deque[FakeAnswer]] = field(default_factory=dict)
    any_path: deque[FakeAnswer] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    orders: FakeOrders = field(default_factory=FakeOrders)


class FakeMeituan:
    """A local fake of the Meituan waimai API, for tests; use as a context manager."""

    PREFIX: Final = "/api/v1/"

    def __init__(self, *, app_id: str = FIXTURE_APP_ID, secret: str = FIXTURE_SECRET) -> None:
        self.app_id = app_id
        self._secret = secret
        self.calls: list[FakeCall] = []
        self._script = _Script()
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

    def reset(self) -> None:
        """Forget the calls received, the answers not played yet and what the actions did
        to each order."""
        with self._script.lock:
            self._script.answers.clear()
            self._script.any_path.clear()
            self._script.orders.clear()
        self.calls.clear()

    def open_request(self, order_id: str) -> None:
        """A new refund application of the order: agreeing or rejecting it works again."""
        with self._script.lock:
            self._script.orders.open_request(order_id)

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
        system: dict[str, str] = {
            key: params.pop(key) for key in facts.SYSTEM_PARAMS if key in params
        }
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
            answer = self._next_answer(path, params.get("order_id", ""))
        self.calls.append(FakeCall(handler.command, path, params, system, sig_ok, answer))
        if answer.delay_s:
            time.sleep(answer.delay_s)
        if answer.drop:
            handler.close_connection = True
            return
        content = answer.body.encode("utf-8")
        try:
            handler.send_response(answer.status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
        except OSError:  # the client gave up (a time-out test)
            pass

    def _next_answer(self, path: str, order_id: str) -> FakeAnswer:
        with self._script.lock:
            waiting = self._script.answers.get(path) or self._script.any_path
            answer = waiting.popleft() if waiting else FakeAnswer(acts=True)
            if not answer.acts:
                return answer
            already = self._script.orders.act(path, order_id)
            own = (
                FakeAnswer.ok()
                if already is None
                else FakeAnswer.error(int(already[0]), already[1])
            )
            return replace(own, delay_s=answer.delay_s)


# --------------------------------------------------------------------------- contract harness


class HarnessFake:
    """A running :class:`FakeMeituan` as the contract harness drives it
    (docs/plugin-authors.md, "The fake platform").

    ``script`` takes an error fixture's ``answer``, one of:

    - ``{"error": {"code": 808, "msg": "操作失败"}}``: Meituan's error answer
      ``{"data":"ng","error":{…}}`` (HTTP 200, or ``"status"`` if the answer gives one);
    - ``{"http": 502}`` or ``{"http": 404, "body": "…"}``: a bare HTTP answer (a gateway's
      page by default);
    - ``{"slow": seconds}``: ``{"data":"ok"}`` after ``seconds`` (a time-out for a shorter
      ``api_timeout_seconds``);
    - ``{"drop": true}``: the connection closed without an answer.

    It is played to the next API call, whatever its path.
    """

    def __init__(self, fake: FakeMeituan) -> None:
        self.fake = fake

    def configure(self, config: PluginConfig) -> PluginConfig:
        """The config with ``api_base`` pointing at the fake."""
        return config.model_copy(
            update={"settings": {**config.settings, "api_base": self.fake.api_base}}
        )

    def script(self, answer: Mapping[str, Any]) -> None:
        """Play ``answer`` to the next API call."""
        self.fake.script_any(scripted_answer(answer))

    def calls(self) -> list[dict[str, Any]]:
        """The API calls received, with their business parameters (the system ones apart)."""
        return [
            {"method": call.method, "path": call.path, "params": dict(call.params),
             "signature_ok": call.sig_ok}
            for call in self.fake.calls
        ]  # fmt: skip

    def reset(self) -> None:
        """Forget the calls and the scripted answers."""
        self.fake.reset()


def scripted_answer(answer: Mapping[str, Any]) -> FakeAnswer:
    """The :class:`FakeAnswer` of an error fixture's ``answer`` (see :class:`HarnessFake`)."""
    if "error" in answer:
        error = answer["error"]
        return FakeAnswer.error(
            int(error["code"]), str(error.get("msg", "")), status=int(answer.get("status", 200))
        )
    if "http" in answer:
        if "body" in answer:
            return FakeAnswer.http(int(answer["http"]), str(answer["body"]))
        return FakeAnswer.http(int(answer["http"]))
    if "slow" in answer:
        return FakeAnswer.slow(float(answer["slow"]))
    if answer.get("drop"):
        return FakeAnswer.dropped()
    raise ValueError(f"not a scripted answer of the Meituan fake: {dict(answer)!r}")


@contextlib.contextmanager
def fake_platform(config: PluginConfig) -> Iterator[HarnessFake]:
    """A running fake Meituan API knowing the ``app_id`` and ``app_secret`` of ``config``."""
    settings = config.settings
    with FakeMeituan(app_id=str(settings["app_id"]), secret=str(settings["app_secret"])) as fake:
        yield HarnessFake(fake)

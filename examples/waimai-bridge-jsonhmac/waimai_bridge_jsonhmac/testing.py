"""A local fake of the platform's API, pushes as the platform signs them, and the fake as
the contract harness drives it (:func:`fake_platform`). Standard library only."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from waimai_bridge_jsonhmac.protocol import (
    APP_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    canonical_json,
    signed_headers,
    verify,
)

if TYPE_CHECKING:
    from waimai_bridge.plugin_api import PluginConfig

ROOT = "/v1/"


def signed_push(
    message: Mapping[str, Any], *, app_id: str, secret: str, timestamp_ms: int
) -> tuple[dict[str, str], str]:
    """The headers and body of a push of ``message`` as the platform sends it."""
    body = canonical_json(message)
    headers = {
        "content-type": "application/json",
        **signed_headers(app_id, secret, timestamp_ms, body),
    }
    return headers, body.decode("utf-8")


class FakeApi:
    """The platform's order API on 127.0.0.1: checks the app id and signature, records
    every call, answers ``{"ok": true}`` or the next scripted answer.

    A scripted answer is ``{"status": 503, "body": {...} | "text"}``, ``{"slow": seconds}``
    (then the normal answer) or ``{"drop": true}`` (close without answering).
    """

    def __init__(self, app_id: str, secret: str) -> None:
        self.app_id, self._secret = app_id, secret
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._script: deque[Mapping[str, Any]] = deque()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Silent."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def api_base(self) -> str:
        """The API root, with a trailing slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{ROOT}"

    def start(self) -> FakeApi:
        """Serve from a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def script(self, answer: Mapping[str, Any]) -> None:
        """Queue an answer for the next call."""
        with self._lock:
            self._script.append(answer)

    def calls(self) -> list[dict[str, Any]]:
        """The calls so far: method, path below the root, JSON body, signature check."""
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        """Forget calls and scripted answers."""
        with self._lock:
            self._calls.clear()
            self._script.clear()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length") or 0))
        signed = handler.headers.get(APP_HEADER) == self.app_id and verify(
            self._secret,
            handler.headers.get(TIMESTAMP_HEADER, ""),
            body,
            handler.headers.get(SIGNATURE_HEADER, ""),
        )
        try:
            params = json.loads(body)
        except ValueError:
            params = None
        path = handler.path.removeprefix(ROOT)
        with self._lock:
            self._calls.append(
                {"method": "POST", "path": path, "params": params, "signature_ok": signed}
            )
            answer = self._script.popleft() if self._script else None
        if answer is not None and answer.get("drop"):
            handler.close_connection = True
            return
        if answer is not None and "slow" in answer:
            time.sleep(float(answer["slow"]))
            answer = None
        if not signed:
            answer = {
                "status": 401,
                "body": {
                    "ok": False,
                    "code": "BAD_SIGNATURE",
                    "message": "the signature does not match",
                },
            }
        status = int(answer["status"]) if answer else 200
        reply = answer["body"] if answer else {"ok": True}
        data = reply.encode() if isinstance(reply, str) else canonical_json(reply)
        with contextlib.suppress(OSError):
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)


class HarnessFake:
    """:class:`FakeApi` as the contract harness drives it."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def configure(self, config: PluginConfig) -> PluginConfig:
        """``config`` with ``api_base`` pointing at the fake."""
        settings = {**config.settings, "api_base": self.api.api_base}
        return config.model_copy(update={"settings": settings})

    def script(self, answer: Mapping[str, Any]) -> None:
        """The next call gets ``answer``."""
        self.api.script(answer)

    def calls(self) -> list[dict[str, Any]]:
        """The calls received."""
        return self.api.calls()

    def reset(self) -> None:
        """Forget calls and scripted answers."""
        self.api.reset()


@contextlib.contextmanager
def fake_platform(config: PluginConfig) -> Iterator[HarnessFake]:
    """A running fake API knowing the app id and secret of ``config``."""
    api = FakeApi(str(config.settings["app_id"]), str(config.settings["app_secret"])).start()
    try:
        yield HarnessFake(api)
    finally:
        api.stop()

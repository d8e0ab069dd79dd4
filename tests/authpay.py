"""``authpay``: a platform plugin that only authorizes stores (OAuth2 authorization code,
or client credentials where ``grant`` says so), and its fake authorization page and token
endpoint, an authorizing fake of the contract harness."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from waimai_bridge.plugin_api import (
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
    PlatformRejected,
    PluginConfig,
    TransientPlatformError,
    hookimpl,
)

NAME = "authpay"
LIFETIME_SECONDS = 86_400
AUTHORIZING = ["authorize_url", "exchange_code", "refresh_credentials"]
logger = logging.getLogger(__name__)
CLIENT = httpx.Client(trust_env=False, timeout=5.0)

MANIFEST: dict[str, Any] = {
    "name": NAME,
    "display_name": "AuthPay",
    "version": "1.0.0",
    "contract_version": "1.6",
    "capabilities": AUTHORIZING,
    "actions": [],
    "config_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["app_key", "app_secret"],
        "properties": {
            "app_key": {"type": "string"},
            "app_secret": {"type": "string", "writeOnly": True},
            "auth_base": {"type": "string", "default": "https://auth.authpay.test/"},
            "grant": {"enum": ["authorization_code", "client_credentials"]},
        },
    },
    "store_config_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["shop_id"],
        "properties": {"shop_id": {"type": "string"}},
    },
    "native_codes": [],
}

CONFIG: dict[str, Any] = {
    "public_base_url": "https://bridge.example.com",
    "settings": {"app_key": "authpay-app", "app_secret": "authpay-secret-0123456789"},
    "stores": {"S001": {"shop_id": "700001"}, "S002": {"shop_id": "700002"}},
}
"""The fixtures' config.json."""


class AuthPay:
    """The plugin, right; subclasses break one thing each."""

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return MANIFEST

    @hookimpl
    def authorize_url(
        self, request: AuthorizationRequest, config: PluginConfig
    ) -> AuthorizationStart:
        if config.settings.get("grant") == "client_credentials":
            return AuthorizationStart(url=None)
        query = {"response_type": "code", "client_id": config.settings["app_key"],
                 "redirect_uri": request.redirect_uri, "state": request.state}  # fmt: skip
        return AuthorizationStart(url=self.base(config) + "authorize?" + urlencode(query))

    @hookimpl
    def exchange_code(self, exchange: CodeExchange, config: PluginConfig) -> Credentials:
        if exchange.code is None:
            form = self.client_credentials(exchange.store_id, config)
        else:
            form = {"grant_type": "authorization_code", "code": exchange.code,
                    "redirect_uri": exchange.redirect_uri}  # fmt: skip
        credentials = self.token(form, config)
        logger.info("store %s authorized", exchange.store_id)
        return credentials

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        token = refresh.credentials.refresh_token
        if token is None:
            return self.token(self.client_credentials(refresh.store_id, config), config)
        return self.token({"grant_type": "refresh_token", "refresh_token": token}, config)

    def base(self, config: PluginConfig) -> str:
        return str(config.settings.get("auth_base", "https://auth.authpay.test/"))

    def client_credentials(self, store_id: str, config: PluginConfig) -> dict[str, str]:
        return {"grant_type": "client_credentials", "shop_id": config.stores[store_id]["shop_id"]}

    def token(self, form: dict[str, str], config: PluginConfig) -> Credentials:
        """The token endpoint's credentials for ``form``."""
        auth = (str(config.settings["app_key"]), str(config.settings["app_secret"]))
        try:
            response = CLIENT.post(self.base(config) + "token", data=form, auth=auth)
        except httpx.TransportError as exc:
            raise TransientPlatformError(
                f"{type(exc).__name__} calling the token endpoint"
            ) from None
        return self.answer(response)

    def answer(self, response: httpx.Response) -> Credentials:
        """The credentials of a token endpoint's answer, or its error raised."""
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientPlatformError(
                "the token endpoint cannot serve", code=str(response.status_code)
            )
        answer = response.json()
        if response.status_code != 200:
            raise PlatformRejected("the token endpoint refused", code=str(answer.get("error")))
        return Credentials(
            access_token=answer["access_token"],
            refresh_token=answer.get("refresh_token"),
            expires_at_ms=int(time.time() * 1000) + int(answer["expires_in"]) * 1000,
            scope=answer.get("scope"),
        )


# --------------------------------------------------------------------------- the fake


class FakeAuthPay:
    """AuthPay's authorization page and token endpoint on 127.0.0.1, as the contract
    harness drives them (an authorizing fake)."""

    def __init__(self, config: PluginConfig) -> None:
        self.app = (str(config.settings["app_key"]), str(config.settings["app_secret"]))
        self.shops = {store: str(binding["shop_id"]) for store, binding in config.stores.items()}
        self.lock = threading.Lock()
        self.codes: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.revoked: set[str] = set()
        self.signed_in: str | None = None
        self.outage: int | None = None
        self.received: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    # the harness's handle

    def configure(self, config: PluginConfig) -> PluginConfig:
        return config.model_copy(update={"settings": {**config.settings, "auth_base": self.url}})

    def script(self, answer: Mapping[str, Any]) -> None:
        raise NotImplementedError("authpay has no API to script")

    def calls(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.outage = None

    def consenting(self, store_id: str) -> None:
        with self.lock:
            self.signed_in = self.shops[store_id]

    def revoke(self, store_id: str) -> None:
        with self.lock:
            self.revoked.add(self.shops[store_id])

    def token_outage(self, status: int) -> None:
        with self.lock:
            self.outage = status

    # the platform

    def record(self, method: str, path: str) -> None:
        with self.lock:
            self.received.append({"method": method, "path": urlsplit(path).path.lstrip("/"),
                                  "params": {}, "signature_ok": None})  # fmt: skip

    def consent(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        """The authorization page: the signed-in owner consents (a redirect), or 400."""
        with self.lock:
            shop, self.signed_in = self.signed_in, None
            if shop is None or query.get("client_id") != self.app[0]:
                return 400, {}
            if not query.get("redirect_uri", "").startswith("https://"):
                return 400, {}
            code = secrets.token_urlsafe(16)
            self.codes[code] = shop
            self.revoked.discard(shop)
        answer = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        return 302, {"location": query["redirect_uri"] + "?" + urlencode(answer)}

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, Any]:
        """The token endpoint's status and JSON answer."""
        with self.lock:
            if self.outage is not None:
                return self.outage, {"error": "temporarily_unavailable"}
            if basic != self.app:
                return 401, {"error": "invalid_client"}
            grant = form.get("grant_type")
            if grant == "authorization_code":
                shop = self.codes.pop(form.get("code", ""), None)
            elif grant == "refresh_token":
                shop = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            elif grant == "client_credentials":
                shop = form.get("shop_id")
                shop = shop if shop in self.shops.values() else None
            else:
                return 400, {"error": "unsupported_grant_type"}
            if shop is None or shop in self.revoked:
                return 400, {"error": "invalid_grant"}
            answer: dict[str, Any] = {"access_token": "at-" + secrets.token_urlsafe(24),
                                      "token_type": "bearer", "expires_in": LIFETIME_SECONDS,
                                      "scope": "all"}  # fmt: skip
            if grant != "client_credentials":
                refresh_token = "rt-" + secrets.token_urlsafe(24)
                answer["refresh_token"] = refresh_token
                self.refresh_tokens[refresh_token] = shop
            return 200, answer


def _handler(fake: FakeAuthPay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            fake.record("GET", parts.path)
            if parts.path != "/authorize":
                return self.reply(404, {})
            status, headers = fake.consent(dict(parse_qsl(parts.query)))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            fake.record("POST", self.path)
            status, answer = fake.token(form, self.basic())
            self.reply(status, answer)

        def basic(self) -> tuple[str, str] | None:
            import base64

            header = self.headers.get("authorization", "")
            if not header.startswith("Basic "):
                return None
            key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return key, secret

        def reply(self, status: int, answer: Any) -> None:
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a request line would show the code."""

    return Handler


@contextlib.contextmanager
def fake_platform(config: PluginConfig) -> Iterator[FakeAuthPay]:
    """A running fake of AuthPay; its port is freed on exit."""
    fake = FakeAuthPay(config)
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        thread.join()

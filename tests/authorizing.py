"""Store authorization's test kit: a fake platform (a real HTTP server on 127.0.0.1: its
authorization page and token endpoint) and two plugins that authorize stores on it through
the hooks, ``codepay`` by the authorization code a store's owner gives and ``keypay`` by
client credentials (nobody's consent), installed as entry points so that the command line
finds them as it finds real ones; and the configured bridge, its web app and its command
line, with what they answered kept to look for secrets in."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from waimai_bridge.cli import cli
from waimai_bridge.config import KEYS_ENV, load_config
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
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.sealing import Sealer, new_key
from waimai_bridge.store import credentials as store
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import ChannelCredentials
from waimai_bridge.web.app import create_app
from waimai_bridge.web.board_session import COOKIE

TOKEN = "surfaces-api-token-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY = new_key()
HOUR_S = 3600
ENGLISH = {"Accept-Language": "en"}
BASE_URL = "https://bridge.example.com"


# --------------------------------------------------------------------------- the fake platform


@dataclass
class FakePlatform:
    """The platform's authorization page and token endpoint, and what they handed out."""

    url: str = ""
    lifetimes: dict[str, int] = field(default_factory=dict)
    """Seconds an access token lives, by client id (a day unless set)."""
    declining: bool = False
    """The store's owner declines on the authorization page."""
    refusing_refresh: bool = False
    down: bool = False
    codes: dict[str, str] = field(default_factory=dict)
    """Unused codes, by code: the client id they were given for."""
    refresh_tokens: set[str] = field(default_factory=set)
    exchanges: int = 0
    secrets: list[str] = field(default_factory=list)
    """Every code and token handed out."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authorize(self, query: dict[str, str]) -> str:
        """Where the authorization page sends the owner's browser."""
        if self.declining:
            answer = {"error": "access_denied", "state": query["state"]}
        else:
            code = "code-" + secrets.token_urlsafe(12)
            with self.lock:
                self.codes[code] = query["client_id"]
                self.secrets.append(code)
            answer = {"code": code, "state": query["state"]}
        return f"{query['redirect_uri']}?{urllib.parse.urlencode(answer)}"

    def token(self, client_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer."""
        if self.down:
            return 503, {"error": "temporarily_unavailable"}
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                self.exchanges += 1
                if self.codes.pop(form.get("code", ""), None) != client_id:
                    return 400, {"error": "invalid_grant"}
            elif grant == "refresh_token":
                if self.refusing_refresh or form.get("refresh_token") not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant"}
                self.refresh_tokens.discard(form["refresh_token"])
            elif grant != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            access, refresh = "AT-" + secrets.token_hex(16), "RT-" + secrets.token_hex(16)
            self.refresh_tokens.add(refresh)
            self.secrets += [access, refresh]
        lifetime = self.lifetimes.get(client_id, 24 * HOUR_S)
        return 200, {
            "access_token": access, "refresh_token": refresh, "expires_in": lifetime,
            "scope": "all",
        }  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is its assertions."""

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.path != "/authorize":
            self.send_error(404)
            return
        self.send_response(302)
        self.send_header("Location", self.server.platform.authorize(query))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        basic = self.headers.get("Authorization", "").removeprefix("Basic ")
        client_id = base64.b64decode(basic).decode().partition(":")[0]
        status, answer = self.server.platform.token(client_id, form)
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    platform: FakePlatform


@contextmanager
def fake_platform() -> Iterator[FakePlatform]:
    """The fake platform, listening on a free local port until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.platform = FakePlatform(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.platform
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- the plugins


class AuthorizingPlugin:
    """A plugin that only authorizes stores on the fake platform: by the code of the
    owner's consent (``consent``), or by client credentials."""

    def __init__(self, name: str, *, consent: bool) -> None:
        self.name = name
        self.consent = consent

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.name.capitalize().replace("pay", " pay"),
            "version": "0.1.0",
            "contract_version": "1.6",
            "capabilities": ["authorize_url", "exchange_code", "refresh_credentials"],
            "actions": [],
            "config_schema": {
                "type": "object", "additionalProperties": False,
                "required": ["secret", "platform_url"],
                "properties": {
                    "secret": {"type": "string", "minLength": 1, "writeOnly": True},
                    "platform_url": {"type": "string"},
                },
            },
            "store_config_schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"shop": {"type": ["string", "integer"]}},
            },
            "native_codes": [],
        }  # fmt: skip

    @hookimpl
    def authorize_url(
        self, request: AuthorizationRequest, config: PluginConfig
    ) -> AuthorizationStart:
        if not self.consent:
            return AuthorizationStart(url=None)
        query = urllib.parse.urlencode(
            {"response_type": "code", "client_id": self.name,
             "redirect_uri": request.redirect_uri, "state": request.state}
        )  # fmt: skip
        return AuthorizationStart(url=f"{config.settings['platform_url']}/authorize?{query}")

    @hookimpl
    def exchange_code(self, exchange: CodeExchange, config: PluginConfig) -> Credentials:
        if exchange.code is None:
            return self._token(config, {"grant_type": "client_credentials"})
        form = {"grant_type": "authorization_code", "code": exchange.code,
                "redirect_uri": exchange.redirect_uri}  # fmt: skip
        return self._token(config, form)

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        token = refresh.credentials.refresh_token
        if token is None:
            return self._token(config, {"grant_type": "client_credentials"})
        return self._token(config, {"grant_type": "refresh_token", "refresh_token": token})

    def _token(self, config: PluginConfig, form: dict[str, str]) -> Credentials:
        basic = base64.b64encode(f"{self.name}:{config.settings['secret']}".encode()).decode()
        request = urllib.request.Request(
            f"{config.settings['platform_url']}/token",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": f"Basic {basic}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            code = json.loads(exc.read()).get("error")
            if exc.code >= 500:
                raise TransientPlatformError("the token endpoint failed", code=code) from None
            raise PlatformRejected("the token endpoint refused", code=code) from None
        except urllib.error.URLError:
            raise TransientPlatformError("the token endpoint cannot be reached") from None
        return Credentials(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at_ms=int(time.time() * 1000) + int(body["expires_in"]) * 1000,
            scope=body.get("scope"),
        )


CODEPAY = AuthorizingPlugin("codepay", consent=True)
KEYPAY = AuthorizingPlugin("keypay", consent=False)
"""The plugins, as the entry points name them."""


def plugin_site(folder: Path) -> Path:
    """A site folder installing both plugins, and testpay (which authorizes nobody)."""
    info = folder / "waimai_bridge_authorizing-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: waimai-bridge-authorizing\nVersion: 0.1.0\n", "utf-8"
    )
    module = __name__
    (info / "entry_points.txt").write_text(
        f"[waimai_bridge]\ncodepay = {module}:CODEPAY\nkeypay = {module}:KEYPAY\n"
        "testpay = tests.testpay\n",
        "utf-8",
    )
    return folder


# --------------------------------------------------------------------------- the bridge


def config_text(database_url: str, platform_url: str, *, keys: str = f'keys = ["{KEY}"]') -> str:
    return f"""
[bridge]
database_url = "{database_url}"
public_base_url = "{BASE_URL}"
api_tokens = ["{TOKEN}"]
accept_hold_seconds = 0

[authorization]
{keys}
refresh_ahead_minutes = 60

[platforms.codepay]
secret = "codepay-app-secret"
platform_url = "{platform_url}"

[platforms.keypay]
secret = "keypay-app-secret"
platform_url = "{platform_url}"

[platforms.testpay]
secret = "testpay-secret"

[stores.S001]
name = "People's Square"
codepay = {{ shop = 100001 }}
keypay = {{ shop = 100001 }}
testpay = {{ shop = 100001 }}

[stores.S002]
codepay = {{ shop = "100002" }}
"""


@dataclass
class Surfaces:
    """The configured bridge: its web app, its command line and the fake platform."""

    path: Path
    client: TestClient
    bridge: Bridge
    platform: FakePlatform
    outputs: list[str] = field(default_factory=list)
    """Every answer and output that must not hold a secret."""

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = CliRunner().invoke(
            cli, ["--config", str(self.path), *args], env={"COLUMNS": "200", **(env or {})}
        )
        if args[:2] != ("auth", "url"):  # the link holds its state: that is its point
            self.outputs.append(result.output)
        return result

    def link(self, platform: str, store_id: str) -> str:
        """A new authorization link of the store, from ``auth url``."""
        result = self.run("auth", "url", "--platform", platform, "--store", store_id)
        assert result.exit_code == 0, result.output
        [url] = [line for line in result.output.splitlines() if line.startswith("http")]
        return url

    def follow(self, url: str) -> str:
        """Where the platform's authorization page sends the owner's browser: the
        bridge's callback, as a path with its query."""
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=5)
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        assert answer.status == 302
        location = answer.getheader("Location")
        connection.close()
        assert location is not None
        assert location.startswith(BASE_URL)
        return location.removeprefix(BASE_URL)

    def callback(self, path: str) -> Any:
        answer = self.client.get(path, headers=ENGLISH)
        self.outputs.append(answer.text)
        return answer

    def status(self, **filters: str) -> dict[tuple[str, str], dict[str, Any]]:
        options = [part for name, value in filters.items() for part in (f"--{name}", value)]
        result = self.run("auth", "status", "--json", *options)
        assert result.exit_code == 0, result.output
        return {(row["store_id"], row["platform"]): row for row in json.loads(result.output)}

    def channels(self, store_id: str) -> dict[str, dict[str, Any]]:
        answer = self.client.get(f"/api/v1/stores/{store_id}/channels", headers=AUTH)
        assert answer.status_code == 200, answer.text
        self.outputs.append(answer.text)
        return {channel["platform"]: channel for channel in answer.json()["channels"]}

    def access_token(self, platform: str, store_id: str, sealer: Sealer | None = None) -> str:
        with self.bridge.database.reading() as session:
            found = store.stored(
                session, sealer or Sealer([KEY]), platform, store_id,
                now_ms=self.bridge.clock(), ahead_ms=HOUR_S * 1000,
            )  # fmt: skip
        assert found is not None
        return found.credentials.access_token

    def stored_rows(self) -> int:
        with self.bridge.database.reading() as session:
            return int(
                session.execute(select(func.count()).select_from(ChannelCredentials)).scalar_one()
            )

    def login(self) -> str:
        answer = self.client.post("/board/login", data={"token": TOKEN}, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        return str(answer.cookies[COOKIE])


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    """Both plugins and testpay installed for this test; the plugins found."""
    monkeypatch.syspath_prepend(str(plugin_site(tmp_path / "site")))
    for variable in ("WAIMAI_CONFIG", "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL", KEYS_ENV):
        monkeypatch.delenv(variable, raising=False)
    return PluginRegistry.discover(blocked=())


@contextmanager
def surfaces_of(
    database: Database, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Surfaces]:
    """The bridge on ``database``, configured with both plugins on ``platform``."""
    registry = install(tmp_path, monkeypatch)
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(database.url, platform.url), "utf-8")
    bridge = Bridge(load_config(path, registry), registry)
    try:
        yield Surfaces(path, TestClient(create_app(bridge)), bridge, platform)
    finally:
        bridge.database.dispose()


def assert_no_secret(surfaces: Surfaces, logs: pytest.LogCaptureFixture, *more: str) -> None:
    """No code, token or state the flow used is in a log record, an answer or an output.

    httpx's own records are the test client's request lines (the callback's URL as the
    test sent it), not the bridge's."""
    formatter = logging.Formatter()
    logged = [
        formatter.format(record)
        for record in logs.records
        if not record.name.startswith(("httpx", "httpcore"))
    ]
    shown = "\n".join([*logged, *surfaces.outputs])
    leaked = [secret for secret in [*surfaces.platform.secrets, *more] if secret in shown]
    assert leaked == []
    assert surfaces.platform.secrets  # the flow handed some out


def jar(cookie: str) -> dict[str, str]:
    """Headers with the board's session cookie."""
    return {"Cookie": f"{COOKIE}={cookie}"}


def query_of(url: str) -> dict[str, str]:
    """A URL's query parameters."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))

"""Store authorization as an operator and a store's owner meet it: ``waimai-bridge auth``
(url, status, refresh, new-key, rekey), the platform's callback ``GET
/oauth/{platform}/callback``, the channels API and the board's badges.

Two test platforms authorize through their plugins' hooks against one fake platform, a
real HTTP server on 127.0.0.1: ``codepay`` by the authorization code a store's owner
gives, ``keypay`` by client credentials (nobody's consent). The plugins are installed as
entry points, so the command line finds them as it finds real ones. No token, code or
state ever shows in a log record, an API answer or a page.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import func, select

from tests import testpay
from tests.test_board_browser import CHROMIUM
from waimai_bridge.cli import cli
from waimai_bridge.config import KEYS_ENV, load_config
from waimai_bridge.demo.stack import listening_socket, serving
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
from waimai_bridge.sealing import Sealer, SealingUnavailable, check_key, new_key
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


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    """The fake platform, listening on a free local port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.platform = FakePlatform(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.platform
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
    monkeypatch.syspath_prepend(str(plugin_site(tmp_path / "site")))
    for variable in ("WAIMAI_CONFIG", "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL", KEYS_ENV):
        monkeypatch.delenv(variable, raising=False)
    return PluginRegistry.discover(blocked=())


@pytest.fixture
def surfaces(
    database: Database, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Surfaces]:
    registry = install(tmp_path, monkeypatch)
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(database.url, platform.url), "utf-8")
    bridge = Bridge(load_config(path, registry), registry)
    yield Surfaces(path, TestClient(create_app(bridge)), bridge, platform)
    bridge.database.dispose()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


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
    return {"Cookie": f"{COOKIE}={cookie}"}


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


# --------------------------------------------------------------------------- the code flow


def test_a_store_authorized_by_its_owner_through_the_link_and_the_callback(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    started = surfaces.run("auth", "url", "--platform", "codepay", "--store", "S001")
    assert started.exit_code == 0, started.output
    assert "log in to Code pay" in started.output
    assert f"{BASE_URL}/oauth/codepay/callback" in started.output
    assert "(15 minutes)" in started.output
    [link] = [line for line in started.output.splitlines() if line.startswith("http")]
    asked = query_of(link)
    assert link.startswith(f"{surfaces.platform.url}/authorize?")
    assert asked["redirect_uri"] == f"{BASE_URL}/oauth/codepay/callback"
    state = asked["state"]
    assert len(state) >= 32

    callback = surfaces.follow(link)
    assert query_of(callback)["state"] == state
    page = surfaces.callback(callback)
    assert page.status_code == 200, page.text
    assert "Store People&#39;s Square is now authorized on Code pay." in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-type"].startswith("text/html")

    status = surfaces.status()
    row = status["S001", "codepay"]
    assert (row["status"], row["scope"], row["failures"], row["problem"]) == (
        "active", "all", 0, None,
    )  # fmt: skip
    assert row["expires_at_ms"] == pytest.approx((time.time() + 24 * HOUR_S) * 1000, abs=60_000)
    assert row["expires_at"][:16] == time.strftime(
        "%Y-%m-%dT%H:%M", time.localtime(row["expires_at_ms"] / 1000)
    )
    assert {key: row["status"] for key, row in status.items()} == {
        ("S001", "codepay"): "active", ("S001", "keypay"): "static",
        ("S001", "testpay"): "static", ("S002", "codepay"): "static",
    }  # fmt: skip
    table = surfaces.run("auth", "status", "--store", "S001")
    assert table.exit_code == 0
    assert "active" in table.output
    assert "static" in table.output
    assert "S002" not in table.output

    channels = surfaces.channels("S001")
    assert channels["codepay"]["authorization"] == {
        "status": "active", "scope": "all", "problem": None,
        "expires_at": channels["codepay"]["authorization"]["expires_at"],
    }  # fmt: skip
    assert channels["codepay"]["authorization"]["expires_at"].endswith("+00:00")
    assert channels["keypay"]["authorization"]["status"] == "static"
    assert (channels["testpay"]["auto_accept"], channels["testpay"]["source"]) == (False, "config")

    token = surfaces.access_token("codepay", "S001")
    replayed = surfaces.callback(callback)
    assert replayed.status_code == 400
    assert "unknown, used already or expired" in replayed.text
    assert surfaces.access_token("codepay", "S001") == token
    assert surfaces.platform.exchanges == 1  # the replay never reached the platform

    forged = surfaces.callback(
        f"/oauth/codepay/callback?code=anything&state={secrets.token_urlsafe(32)}"
    )
    assert forged.status_code == 400
    assert "unknown, used already or expired" in forged.text
    assert surfaces.platform.exchanges == 1
    assert_no_secret(surfaces, logs, state)


def test_the_store_is_the_one_the_state_was_issued_for(surfaces: Surfaces) -> None:
    first = surfaces.link("codepay", "S001")
    second = surfaces.link("codepay", "S002")
    callback = surfaces.follow(first)
    page = surfaces.callback(f"{callback}&store_id=S002&store=S002")
    assert page.status_code == 200
    assert "People&#39;s Square" in page.text
    assert {key: row["status"] for key, row in surfaces.status(platform="codepay").items()} == {
        ("S001", "codepay"): "active", ("S002", "codepay"): "static",
    }  # fmt: skip

    # a state of one platform opens nothing at another's callback
    keypay = surfaces.callback(surfaces.follow(second).replace("/oauth/codepay/", "/oauth/keypay/"))
    assert keypay.status_code == 400
    assert "unknown, used already or expired" in keypay.text
    assert surfaces.status()["S001", "keypay"]["status"] == "static"
    assert surfaces.stored_rows() == 1


def test_a_declined_refused_or_unreachable_authorization_stores_nothing(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    platform = surfaces.platform
    platform.declining = True
    link = surfaces.link("codepay", "S001")
    declined = surfaces.callback(surfaces.follow(link))
    assert declined.status_code == 400
    assert "the store&#39;s owner declined" in declined.text
    platform.declining = False
    # the owner may change their mind: the link was not used up
    assert surfaces.callback(surfaces.follow(link)).status_code == 200
    assert surfaces.stored_rows() == 1

    tampered = surfaces.follow(surfaces.link("codepay", "S002"))
    refused = surfaces.callback(tampered.replace("code=code-", "code=forged-"))
    assert refused.status_code == 400
    assert "Code pay refused the authorization code" in refused.text
    assert surfaces.callback(tampered).status_code == 400  # its state is used up
    assert surfaces.status()["S002", "codepay"]["status"] == "static"

    callback = surfaces.follow(surfaces.link("codepay", "S002"))
    platform.down = True
    unreachable = surfaces.callback(callback)
    assert unreachable.status_code == 502
    assert "Code pay could not be reached" in unreachable.text
    assert surfaces.stored_rows() == 1
    platform.down = False

    for path, status in [
        ("/oauth/nopay/callback?code=c&state=" + "s" * 32, 404),
        ("/oauth/testpay/callback?code=c&state=" + "s" * 32, 404),  # it authorizes nobody
        ("/oauth/codepay/callback?code=c&state=not+a+state", 400),
        ("/oauth/codepay/callback?code=c&state=" + "s" * 129, 400),
        ("/oauth/codepay/callback?code=" + "c" * 4097 + "&state=" + "s" * 32, 400),
        ("/oauth/codepay/callback?code=%00&state=" + "s" * 32, 400),
        ("/oauth/codepay/callback?code=c&code=d&state=" + "s" * 32, 400),
    ]:
        answer = surfaces.callback(path)
        assert (answer.status_code, answer.headers["cache-control"]) == (status, "no-store"), path
    assert surfaces.stored_rows() == 1
    assert_no_secret(surfaces, logs)


def test_the_callback_page_speaks_the_owners_language(surfaces: Surfaces) -> None:
    callback = surfaces.follow(surfaces.link("codepay", "S002"))
    page = surfaces.client.get(callback, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200
    assert "门店「S002」已完成Code pay授权" in page.text
    used = surfaces.client.get(callback, headers={"Accept-Language": "zh-CN"})
    assert "此授权链接无效、已使用或已过期" in used.text


@settings(
    max_examples=150, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    name=st.sampled_from(["codepay", "keypay", "testpay", "nopay"]),
    query=st.lists(
        st.tuples(
            st.sampled_from(["code", "state", "error", "store_id", "x"]),
            st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_-]{16,128}", fullmatch=True),
        ),
        max_size=5,
    ),
)
def test_no_callback_is_a_server_error_or_binds_a_store(
    surfaces: Surfaces, name: str, query: list[tuple[str, str]]
) -> None:
    answer = surfaces.client.get(f"/oauth/{name}/callback", params=query, headers=ENGLISH)
    assert answer.status_code in (400, 404), answer.text
    assert answer.headers["content-type"].startswith("text/html")
    for _, value in query:
        if re.fullmatch(r"[A-Za-z0-9_-]{16,}", value):
            assert value not in answer.text
    assert surfaces.stored_rows() == 0


# --------------------------------------------------------------------------- the commands


def test_an_app_that_needs_no_consent_is_authorized_at_once(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    surfaces.platform.lifetimes["keypay"] = 2 * HOUR_S
    result = surfaces.run("auth", "url", "--platform", "keypay", "--store", "S001")
    assert result.exit_code == 0, result.output
    assert "Store S001 is authorized on keypay now" in result.output
    assert "its access token expires 20" in result.output
    surfaces.outputs.append(result.output)
    assert surfaces.status()["S001", "keypay"]["status"] == "active"
    assert_no_secret(surfaces, logs)


def test_refresh_by_hand_renews_and_a_refusal_makes_the_channel_unauthorized(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    assert surfaces.callback(surfaces.follow(surfaces.link("codepay", "S001"))).status_code == 200
    before = surfaces.access_token("codepay", "S001")
    renewed = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert renewed.exit_code == 0, renewed.output
    assert "Renewed store S001's credentials of codepay; its access token expires" in renewed.output
    assert surfaces.access_token("codepay", "S001") != before

    surfaces.platform.down = True
    down = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert (down.exit_code, down.output.strip()) == (
        1, "Error: store S001's credentials of codepay were not renewed: the platform could "
        "not be reached (TransientPlatformError temporarily_unavailable)",
    )  # fmt: skip
    assert surfaces.status()["S001", "codepay"]["status"] == "active"
    surfaces.platform.down = False

    surfaces.platform.refusing_refresh = True
    refused = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert refused.exit_code == 1
    assert "the platform refused (PlatformRejected invalid_grant)" in refused.output
    assert "auth url --platform codepay --store S001" in refused.output
    row = surfaces.status()["S001", "codepay"]
    assert row["status"] == "unauthorized"
    assert "PlatformRejected invalid_grant" in row["problem"]
    authorization = surfaces.channels("S001")["codepay"]["authorization"]
    assert authorization["status"] == "unauthorized"
    assert authorization["problem"] == row["problem"]
    table = surfaces.run("auth", "status")
    assert "unauthorized" in table.output
    again = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert again.exit_code == 1
    assert "has no credentials of codepay to renew" in again.output

    surfaces.platform.refusing_refresh = False
    assert surfaces.callback(surfaces.follow(surfaces.link("codepay", "S001"))).status_code == 200
    row = surfaces.status()["S001", "codepay"]
    assert (row["status"], row["problem"]) == ("active", None)
    assert_no_secret(surfaces, logs)


def test_the_commands_say_what_is_missing(surfaces: Surfaces, tmp_path: Path) -> None:
    cases = {
        ("url", "nopay", "S001"): (2, "'nopay' is not a configured platform"),
        ("url", "testpay", "S001"): (2, "the testpay plugin does not authorize stores"),
        ("url", "keypay", "S002"): (2, "store 'S002' is not bound to keypay in the config"),
        ("url", "codepay", "S404"): (2, "store 'S404' is not bound to codepay"),
        ("refresh", "keypay", "S001"): (1, "store 'S001' has no credentials of keypay to renew"),
    }
    for (command, platform, store_id), (code, message) in cases.items():
        result = surfaces.run("auth", command, "--platform", platform, "--store", store_id)
        assert result.exit_code == code, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    surfaces.platform.down = True
    down = surfaces.run("auth", "url", "--platform", "keypay", "--store", "S001")
    assert (down.exit_code, down.output.strip()) == (
        1, "Error: store S001 was not authorized on keypay: the platform could not be reached "
        "(TransientPlatformError temporarily_unavailable)",
    )  # fmt: skip

    keyless = tmp_path / "keyless.toml"
    keyless.write_text(
        config_text(surfaces.bridge.config.bridge.database_url, surfaces.platform.url, keys=""),
        "utf-8",
    )
    for args in (("url", "--platform", "codepay", "--store", "S001"), ("rekey",)):
        result = CliRunner().invoke(cli, ["--config", str(keyless), "auth", *args])
        assert result.exit_code == 2, result.output
        assert "no key to seal credentials with" in result.output
        assert "auth new-key" in result.output


def test_a_key_rotated_with_new_key_and_rekey(surfaces: Surfaces) -> None:
    assert surfaces.run("auth", "url", "--platform", "keypay", "--store", "S001").exit_code == 0
    assert surfaces.callback(surfaces.follow(surfaces.link("codepay", "S001"))).status_code == 200
    made = surfaces.run("auth", "new-key")
    assert made.exit_code == 0
    fresh = made.output.strip()
    check_key(fresh)
    assert fresh != KEY
    token = surfaces.access_token("keypay", "S001")
    with pytest.raises(SealingUnavailable):
        surfaces.access_token("keypay", "S001", Sealer([fresh]))

    both = {KEYS_ENV: f"{fresh},{KEY}"}
    status = surfaces.run("auth", "status", "--json", env=both)
    assert status.exit_code == 0
    rekeyed = surfaces.run("auth", "rekey", env=both)
    assert rekeyed.exit_code == 0, rekeyed.output
    assert rekeyed.output.startswith("Re-sealed the credentials of 2 channels with the first key")
    assert surfaces.access_token("keypay", "S001", Sealer([fresh])) == token
    with pytest.raises(SealingUnavailable):
        surfaces.access_token("keypay", "S001", Sealer([KEY]))

    alone = {KEYS_ENV: fresh}
    renewed = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001", env=alone)
    assert renewed.exit_code == 0, renewed.output
    stale = surfaces.run("auth", "refresh", "--platform", "keypay", "--store", "S001")
    assert stale.exit_code == 2  # the old key alone opens nothing now
    assert "none of the configured keys opens the stored credentials" in stale.output


# --------------------------------------------------------------------------- the board


def test_the_board_flags_unauthorized_and_expiring_channels(surfaces: Surfaces) -> None:
    client = surfaces.client
    assert client.get("/board/channels").status_code == 401
    cookie = surfaces.login()
    assert client.get("/board/channels", headers=jar(cookie)).json() == {"authorizations": []}

    surfaces.platform.lifetimes["keypay"] = HOUR_S // 2  # within the hour ahead: expiring
    assert surfaces.run("auth", "url", "--platform", "keypay", "--store", "S001").exit_code == 0
    assert surfaces.callback(surfaces.follow(surfaces.link("codepay", "S002"))).status_code == 200
    surfaces.platform.refusing_refresh = True
    assert surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S002").exit_code
    flagged = client.get("/board/channels", headers=jar(cookie))
    assert flagged.status_code == 200
    surfaces.outputs.append(flagged.text)
    expiring, unauthorized = flagged.json()["authorizations"]
    assert (expiring["store_id"], expiring["platform"], expiring["status"]) == (
        "S001", "keypay", "expiring",
    )  # fmt: skip
    assert expiring["expires_at"].endswith("+00:00")
    assert unauthorized == {
        "store_id": "S002", "platform": "codepay", "status": "unauthorized", "expires_at":
        unauthorized["expires_at"],
    }  # fmt: skip
    assert surfaces.status()["S001", "keypay"]["status"] == "expiring"

    page = client.get("/board", headers=jar(cookie))
    assert page.status_code == 200
    data = page.text.split('id="board-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["authorizations"] == flagged.json()["authorizations"]
    assert 'id="authorizations"' in page.text
    surfaces.outputs.append(page.text)
    leaked = [secret for secret in surfaces.platform.secrets if secret in "".join(surfaces.outputs)]
    assert leaked == []


def test_the_board_shows_the_badges_in_a_browser(
    platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = install(tmp_path, monkeypatch)
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'board.sqlite3'}", platform.url), "utf-8")
    bridge = Bridge(load_config(path, registry), registry)
    bridge.database.ensure_schema()
    now = bridge.clock()
    with bridge.database.transaction() as session:
        for channel, expires_in_ms in (("testpay", HOUR_S * 24_000), ("codepay", 600_000)):
            credentials = Credentials(access_token="AT-board", expires_at_ms=now + expires_in_ms)
            store_id = "S001" if channel == "testpay" else "S002"
            store.save(session, Sealer([KEY]), channel, store_id, credentials, now_ms=now)
        store.mark_unauthorized(session, "testpay", "S001", "withdrawn", now_ms=now)
    sock = listening_socket()
    url = "http://{}:{}".format(*sock.getsockname()[:2])
    order = f"AUTH-{time.monotonic_ns() % 10**9}"
    with serving(bridge, sock), sync_playwright() as playwright:
        body = testpay.push(f"{order}:new", order, "order.created", int(time.time() * 1000))
        pushed = httpx.post(
            f"{url}/webhooks/testpay", content=body,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(body, "testpay-secret")},
        )  # fmt: skip
        assert pushed.status_code == 200
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(locale="zh-CN")
        page.set_default_timeout(10_000)
        page.goto(f"{url}/board")
        page.fill("#token", TOKEN)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{url}/board")

        flagged = page.locator("#authorizations li")
        expect(flagged).to_have_count(2)
        lost = page.locator("#authorizations li[data-status=unauthorized]")
        expect(lost).to_contain_text("授权已失效")
        expect(lost).to_contain_text("People's Square")
        expect(lost.locator(".badge")).to_have_text("Test pay")
        soon = page.locator("#authorizations li[data-status=expiring]")
        expect(soon).to_contain_text("授权即将过期")
        expect(soon).to_have_attribute("data-store", "S002")
        badge = page.locator(f".card[data-key='testpay/{order}'] .badge")
        expect(badge).to_have_class(re.compile(r"\bauth-unauthorized\b"))
        expect(badge).to_have_attribute("title", "授权已失效，请重新授权")

        page.select_option("select[name=store_id]", "S002")
        expect(flagged).to_have_count(1)
        expect(soon).to_be_visible()
        page.select_option("select[name=platform]", "testpay")
        expect(page.locator("#authorizations")).to_be_hidden()
        browser.close()

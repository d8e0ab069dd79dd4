"""Store authorization end to end with the Eleme plugin and its fake platform, on SQLite and
PostgreSQL: a store bound by its shop id alone (no static token) is authorized by its
owner through ``waimai-bridge auth url`` and the bridge's callback, kept authorized across
expiries by the renewer, made unauthorized by a refused renewal and by a type-100 push,
and authorized again, with no config edit; every action goes through the API and the
embedded worker, and no token, code or secret shows in a log record, an answer, a page or
a command's output."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from waimai_bridge_eleme import api as eleme_api
from waimai_bridge_eleme import examples
from waimai_bridge_eleme import oauth as eleme_oauth
from waimai_bridge_eleme.testing import FakeEleme, push_body

from tests.processes import wait_until
from waimai_bridge.authorization import Credentials
from waimai_bridge.cli import cli
from waimai_bridge.clock import system_clock
from waimai_bridge.config import KEYS_ENV, load_config
from waimai_bridge.models import Action, ActionOutcome, ActionRequest
from waimai_bridge.pipeline.credentials import Renewed
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.sealing import Sealer, new_key
from waimai_bridge.store import credentials as store
from waimai_bridge.store.database import Database
from waimai_bridge.web.app import create_app

APP_KEY = "e2e-auth-app-key"
APP_SECRET = "e2e-auth-app-secret-0123456789"
APP_ID = 58137347
SHOP = 160012345
API_TOKEN = "eleme-authorization-e2e-api-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ENGLISH = {"Accept-Language": "en"}
BASE_URL = "https://bridge.example.com"
CALLBACK = f"{BASE_URL}/oauth/eleme/callback"
KEY = new_key()
LIFETIME_S = 180
"""How long the fake's access tokens last; they are renewed in their last minute."""
CHANNEL = "eleme/S001"
CONFIRM = "eleme.order.confirmOrderLite"

CONFIG = """
[bridge]
database_url = "{url}"
public_base_url = "{base_url}"
api_tokens = ["{api_token}"]
accept_hold_seconds = 0
action_retry_seconds = 0.1
pull_interval_seconds = 0

[authorization]
keys = ["{key}"]
refresh_ahead_minutes = 1
interval_seconds = 3600

[platforms.eleme]
app_key = "{app_key}"
app_secret = "{app_secret}"
app_id = {app_id}
api_base = "{api_base}"
oauth_base = "{oauth_base}"
timeout_seconds = 5

[stores.S001]
name = "People's Square"
eleme = {{ shop_id = {shop} }}
"""


class Clock:
    """The test's time: the machine's, moved forward by :attr:`offset_s`. The bridge, the
    fake platform and the plugin all read it; the command line reads the machine's, so a
    link it issues is a few minutes old to the bridge, within its state_minutes."""

    def __init__(self) -> None:
        self.offset_s = 0

    def __call__(self) -> int:
        return system_clock() + self.offset_s * 1000

    def seconds(self) -> float:
        return self() / 1000


class PluginTime:
    """Stands for the ``time`` module in the Eleme plugin's modules that read the time
    (its API envelopes' timestamps, its tokens' expiry): the plugin takes no clock, so the
    test's is handed to it this way."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def time(self) -> float:
        return self.clock.seconds()


@dataclass
class World:
    """The bridge (web app and embedded worker) configured for Eleme against the fake, its
    command line, and everything they answered that must not hold a secret."""

    path: Path
    client: TestClient
    bridge: Bridge
    fake: FakeEleme
    clock: Clock
    shown: list[str] = field(default_factory=list)
    """Every answer, page and output but the links ``auth url`` prints."""
    links: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=lambda: {APP_SECRET})
    """Every code and token handed out, and the app's secret."""
    orders: int = 0

    def run(self, *args: str) -> str:
        result = CliRunner().invoke(
            cli, ["--config", str(self.path), *args], env={"COLUMNS": "200"}
        )
        assert result.exit_code == 0, result.output
        return result.output

    def status(self) -> dict[str, Any]:
        """``auth status --json``'s row of the store's Eleme channel."""
        output = self.run("auth", "status", "--json", "--store", "S001")
        self.shown.append(output)
        (row,) = json.loads(output)
        assert row["platform"] == "eleme"
        return dict(row)

    def authorize(self) -> httpx.Response:
        """The owner opens the link ``auth url`` prints and consents on the fake's page,
        which sends them to the bridge's callback with a code; the callback's page."""
        output = self.run("auth", "url", "--platform", "eleme", "--store", "S001")
        (link,) = [line for line in output.splitlines() if line.startswith("http")]
        assert link.startswith(f"{self.fake.oauth_base}/authorize?")
        self.links.append(output)
        consent = httpx.get(link, follow_redirects=False, timeout=5)
        assert consent.status_code == 302
        location = consent.headers["location"]
        assert location.startswith(f"{CALLBACK}?")
        back = _query(location)
        assert back["state"] == _query(link)["state"]
        self.secrets.add(back["code"])
        page: httpx.Response = self.client.get(location.removeprefix(BASE_URL), headers=ENGLISH)
        self.shown.append(page.text)
        return page

    def stored(self) -> Credentials:
        """The store's credentials as the bridge keeps them (unsealed)."""
        with self.bridge.database.reading() as session:
            found = store.stored(
                session, Sealer([KEY]), "eleme", "S001", now_ms=self.clock(), ahead_ms=0
            )
        assert found is not None
        credentials = found.credentials
        self.secrets.update([credentials.access_token, str(credentials.refresh_token)])
        return credentials

    def renew(self) -> Renewed:
        """A round of the bridge's renewer, as its scheduled thread does it."""
        done = self.bridge.renewer.round()
        assert done is not None, "the renewer holds its lease"
        self.bridge.renewer.report(done)
        assert done.failed == []
        return done

    def confirm(self) -> dict[str, Any]:
        """A new order pushed by the platform, confirmed through the API; the action as it
        ended."""
        self.orders += 1
        order = f"30845123987654{self.orders:05d}"
        answer = self.push(push_body(10, examples.new_order(order, SHOP), app_id=APP_ID,
                                     shop_id=SHOP, secret=APP_SECRET))  # fmt: skip
        assert answer.status_code == 200, answer.text
        wait_until(
            lambda: self.get(f"/api/v1/platform-orders/eleme/{order}", expect=None).status_code
            == 200, 10, "the new order seen",
        )  # fmt: skip
        asked = self.client.post(
            f"/api/v1/platform-orders/eleme/{order}/actions",
            json={"action": "confirm", "idempotency_key": f"confirm-{order}"}, headers=AUTH,
        )  # fmt: skip
        assert asked.status_code == 202, asked.text
        self.shown.append(asked.text)
        path = f"/api/v1/actions/{asked.json()['id']}"
        ended = wait_until(
            lambda: (view := self.get(path).json())["status"] != "pending" and view,
            15, "the action ended",
        )  # fmt: skip
        assert isinstance(ended, dict)
        return ended

    def push(self, body: bytes) -> httpx.Response:
        answer: httpx.Response = self.client.post("/webhooks/eleme", content=body)
        self.shown.append(answer.text)
        return answer

    def get(self, path: str, *, expect: int | None = 200, **params: str) -> httpx.Response:
        answer: httpx.Response = self.client.get(path, params=params, headers=AUTH)
        if expect is not None:
            assert answer.status_code == expect, answer.text
        self.shown.append(answer.text)
        return answer

    def open_anomalies(self) -> list[dict[str, Any]]:
        page = self.get("/api/v1/anomalies", status="open", rule="channel_unauthorized")
        items: list[dict[str, Any]] = page.json()["items"]
        return items

    def tokens_seen(self) -> list[str]:
        """The token of each confirm call the fake answered, oldest first."""
        return [call.token for call in self.fake.calls_to(CONFIRM)]

    def fake_answered(self, token: str, order: str) -> str | None:
        """The plugin's confirm of ``order`` sent straight to the fake with ``token``: the
        error code of the fake's answer (None: done)."""
        config = self.bridge.config.plugin_config("eleme")
        request = ActionRequest(action_id="direct", action=Action.CONFIRM, platform_order_id=order,
                                store_id="S001", attempt=1)  # fmt: skip
        result = self.bridge.registry.platform("eleme").outbound_action(
            request, config.model_copy(update={"access_tokens": {"S001": token}})
        )
        return None if result.outcome == ActionOutcome.DONE else result.code


@pytest.fixture
def world(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for variable in ("WAIMAI_CONFIG", "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL", KEYS_ENV):
        monkeypatch.delenv(variable, raising=False)
    clock = Clock()
    monkeypatch.setattr(eleme_api, "time", PluginTime(clock))
    monkeypatch.setattr(eleme_oauth, "time", PluginTime(clock))
    fake = FakeEleme(app_key=APP_KEY, app_secret=APP_SECRET, tokens=(), app_id=APP_ID,
                     clock=clock.seconds)  # fmt: skip
    with fake:
        fake.sign_in(SHOP)
        fake.expire_in(LIFETIME_S)
        path = tmp_path / "bridge.toml"
        path.write_text(CONFIG.format(
            url=database.url, base_url=BASE_URL, api_token=API_TOKEN, key=KEY,
            app_key=APP_KEY, app_secret=APP_SECRET, app_id=APP_ID, api_base=fake.api_base,
            oauth_base=fake.oauth_base, shop=SHOP,
        ), "utf-8")  # fmt: skip
        registry = PluginRegistry.discover(blocked=())
        bridge = Bridge(load_config(path, registry), registry, clock=clock)
        with TestClient(create_app(bridge)) as client:
            yield World(path, client, bridge, fake, clock)


def test_a_store_is_authorized_kept_authorized_and_deauthorized_end_to_end(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config_before = world.path.read_bytes()
    fake = world.fake
    assert world.status()["status"] == "static"  # bound by its shop id, nothing stored

    # 1. the owner consents through the link; the callback stores the credentials
    before = world.clock()
    page = world.authorize()
    after = world.clock()
    assert page.status_code == 200, page.text
    assert "Store People&#39;s Square is now authorized on Eleme 饿了么." in page.text
    first = world.stored()
    assert [call.grant_type for call in fake.token_calls] == ["authorization_code"]
    row = world.status()
    assert (row["status"], row["problem"]) == ("active", None)
    assert row["expires_at_ms"] == first.expires_at_ms
    assert before + LIFETIME_S * 1000 <= row["expires_at_ms"] <= after + LIFETIME_S * 1000

    # 2. a new order pushed by the platform, confirmed with the token the fake issued
    action = world.confirm()
    assert (action["status"], action["result"]) == ("done", None)
    assert world.tokens_seen() == [first.access_token]
    answered = fake.calls_to(CONFIRM)[-1].answer
    assert answered is not None
    assert answered["error"] is None

    # 3. renewed in the last minute before expiry; actions carry the new token at once
    assert world.renew() == Renewed(), "not due yet"
    world.clock.offset_s = LIFETIME_S - 55
    assert world.renew() == Renewed(renewed=[CHANNEL])
    renewal = fake.token_calls[-1]
    assert (renewal.grant_type, renewal.form["refresh_token"]) == (
        "refresh_token", first.refresh_token
    )  # fmt: skip
    second = world.stored()
    assert second.access_token != first.access_token
    assert world.confirm()["status"] == "done"
    assert world.tokens_seen()[-1] == second.access_token
    world.clock.offset_s = LIFETIME_S + 5  # the first token has expired on the platform
    order = f"30845123987654{world.orders:05d}"
    assert world.fake_answered(first.access_token, order) == "UNAUTHORIZED"
    assert world.confirm()["status"] == "done"
    assert world.tokens_seen()[-1] == second.access_token
    assert world.renew() == Renewed(), "renewed once"
    channel = world.get("/api/v1/stores/S001/channels").json()["channels"][0]
    assert channel["authorization"]["status"] == "active"

    # 4. the shop withdraws its consent: the next renewal is refused
    fake.revoke(shop_id=SHOP)
    world.clock.offset_s = 2 * LIFETIME_S - 110  # the second token in its last minute
    assert world.renew() == Renewed(refused=[CHANNEL])
    row = world.status()
    assert row["status"] == "unauthorized"
    assert "PlatformRejected invalid_grant" in row["problem"]
    (anomaly,) = world.open_anomalies()
    assert (anomaly["platform"], anomaly["store_id"], anomaly["order_id"]) == (
        "eleme", "S001", None
    )  # fmt: skip
    calls = len(fake.calls)
    failed = world.confirm()
    assert (failed["status"], failed["result"]["code"], failed["attempts"]) == (
        "failed", "UNAUTHORIZED", 1
    )  # fmt: skip
    assert "authorize it again" in failed["result"]["message"]
    assert len(fake.calls) == calls, "nothing sent to the platform"

    # 5. authorized again: active, the anomaly resolved, actions carry the third token
    assert world.authorize().status_code == 200
    third = world.stored()
    assert world.status()["status"] == "active"
    assert world.open_anomalies() == []
    resolved = world.get("/api/v1/anomalies", status="resolved").json()["items"]
    assert [item["id"] for item in resolved] == [anomaly["id"]]
    assert world.confirm()["status"] == "done"
    assert world.tokens_seen()[-1] == third.access_token
    assert third.access_token not in (first.access_token, second.access_token)

    # 6. Eleme's type-100 push: the store withdrew its consent again
    answer = world.push(fake.deauthorization_push(SHOP))
    assert (answer.status_code, answer.json()) == (200, {"message": "ok"})
    row = world.status()
    assert (row["status"], row["problem"]) == ("unauthorized", "the store withdrew its consent")
    (reopened,) = world.open_anomalies()
    assert reopened["id"] != anomaly["id"]
    calls = len(fake.calls)
    assert world.confirm()["result"]["code"] == "UNAUTHORIZED"
    assert len(fake.calls) == calls

    # 7. no token, code or secret anywhere (the links hold only a state, their point)
    world.get("/api/v1/actions")
    world.get("/api/v1/anomalies")
    world.get("/api/v1/stores/S001/channels")
    world.get("/metrics")
    world.shown += [world.run("auth", "status"), *world.links]
    logged = [
        logging.Formatter().format(record) for record in caplog.records if not _own_request(record)
    ]
    assert "store S001 authorized on eleme" in "\n".join(logged)
    assert len(world.secrets) == 1 + 2 + 3 * 2  # the secret, two codes, three token pairs
    leaked = [
        secret for secret in world.secrets if any(secret in text for text in logged + world.shown)
    ]
    assert leaked == []
    assert world.path.read_bytes() == config_before


def _query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def _own_request(record: logging.LogRecord) -> bool:
    """An httpx or httpcore line of the owner's browser (the test): its visit to the
    authorize page, whose answer sends it to the callback with the code, and that visit."""
    message = record.getMessage()
    return record.name.split(".")[0] in ("httpx", "httpcore") and (
        "/authorize?" in message or "/oauth/eleme/callback?" in message
    )

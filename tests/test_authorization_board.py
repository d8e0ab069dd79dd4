"""The order board's badges of a channel's authorization: ``GET /board/channels`` and the
page's data, and the badges in Debian's Chromium (Playwright), against the plugins and the
fake platform of :mod:`tests.authorizing`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests import testpay
from tests.authorizing import (
    HOUR_S,
    KEY,
    TOKEN,
    FakePlatform,
    Surfaces,
    config_text,
    fake_platform,
    install,
    jar,
    surfaces_of,
)
from tests.test_board_browser import CHROMIUM
from waimai_bridge.config import load_config
from waimai_bridge.demo.stack import listening_socket, serving
from waimai_bridge.plugin_api import Credentials
from waimai_bridge.runtime import Bridge
from waimai_bridge.sealing import Sealer
from waimai_bridge.store import credentials as store
from waimai_bridge.store.database import Database


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with fake_platform() as platform:
        yield platform


@pytest.fixture
def surfaces(
    database: Database, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Surfaces]:
    with surfaces_of(database, platform, tmp_path, monkeypatch) as surfaces:
        yield surfaces


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

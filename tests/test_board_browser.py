"""The order board in a real browser: Debian's Chromium driven by Playwright against a real
server (uvicorn in a thread, the embedded worker, SQLite), the test platform's signed pushes
sent over HTTP while the page is open.

Chromium is ``/usr/bin/chromium``, which ``.ci/chromium`` installs; Playwright never
downloads a browser of its own. Without it these tests fail, never skip.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests import testpay
from tests.sample_plugin import PRICE
from waimai_bridge.config import load_config
from waimai_bridge.demo.stack import listening_socket, serving
from waimai_bridge.models import Action
from waimai_bridge.plugin_api import (
    ActionOutcome,
    ActionRequest,
    ActionResult,
    InboundRequest,
    NativeEvent,
    OrderDetails,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    StateChange,
    hookimpl,
)
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import board as board_store
from waimai_bridge.store.tables import OutboundAction
from waimai_bridge.web import board_i18n

CHROMIUM = Path("/usr/bin/chromium")
SECRET = "board-secret"
TOKEN = "board-act-token-0001"
VIEWER_TOKEN = "board-read-token-0001"
TOO_LATE = "订单已出餐，不能取消"
"""What the platform answers a cancel with."""

_orders = itertools.count(1)


@dataclass
class BoardPay:
    """The test platform, able to act: it confirms and answers the rest, and rejects a
    cancel with a message of its own, recording every call."""

    calls: list[ActionRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return testpay.MANIFEST | {
            "capabilities": [*testpay.MANIFEST["capabilities"], "outbound_action"],
            "actions": ["confirm", "cancel", "agree_cancel", "reject_cancel", "agree_refund",
                        "reject_refund", "meal_ready"],
        }  # fmt: skip

    @hookimpl
    def parse_event(self, request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
        return testpay.parse_event(request, config)

    @hookimpl
    def map_state(self, event: NativeEvent) -> StateChange:
        return testpay.map_state(event)

    @hookimpl
    def price_breakdown(self, order: NativeEvent) -> PriceBreakdown | None:
        return testpay.price_breakdown(order)

    @hookimpl
    def order_details(self, order: NativeEvent) -> OrderDetails | None:
        return testpay.order_details(order)

    @hookimpl
    def outbound_action(self, action: ActionRequest) -> ActionResult:
        with self.lock:
            self.calls.append(action)
        if action.action == "cancel":
            return ActionResult(outcome=ActionOutcome.REJECTED, code="E42", message=TOO_LATE)
        return ActionResult(outcome=ActionOutcome.DONE, code="ok")

    def calls_of(self, order: str) -> list[ActionRequest]:
        with self.lock:
            return [call for call in self.calls if call.platform_order_id == order]


@dataclass
class Board:
    """The running bridge: its URL, its database and the platform behind it."""

    url: str
    bridge: Bridge
    platform: BoardPay

    def push(self, order: str, code: str, **extra: Any) -> None:
        """The platform's signed push about ``order``, sent now."""
        body = testpay.push(f"{order}:{code}", order, code, int(time.time() * 1000), **extra)
        answer = httpx.post(
            f"{self.url}/webhooks/testpay",
            content=body,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)},
        )
        assert answer.status_code == 200, answer.text

    def actions(self, order: str) -> list[tuple[str, str]]:
        """The order's outbound actions: (action, status), oldest first."""
        with self.bridge.database.transaction() as session:
            rows = session.query(OutboundAction).filter_by(platform_order_id=order)
            return [(row.action, row.status) for row in rows.order_by(OutboundAction.id)]


def config_text(database_url: str) -> str:
    return f"""
[bridge]
database_url = "{database_url}"
broker_url = ""
public_base_url = "https://bridge.example.com"
shards = 2
accept_hold_seconds = 0
sweep_interval_seconds = 0.2
resend_after_seconds = 0.5
action_retry_seconds = 0.2
api_tokens = ["{TOKEN}", {{ token = "{VIEWER_TOKEN}", name = "viewer", scopes = ["read"] }}]

[platforms.testpay]
secret = "{SECRET}"

[stores.S001]
name = "人民广场店"
testpay = {{ shop = 100001 }}

[stores.S002]
testpay = {{ shop = "100002" }}
"""


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """A bridge serving the board on a free local port."""
    folder = tmp_path_factory.mktemp("board")
    path = folder / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{folder / 'bridge.sqlite3'}"), "utf-8")
    platform = BoardPay()
    plugins = PluginRegistry.discover(blocked=())
    report = plugins.add(testpay.NAME, platform)
    assert report.problem is None, report.problem
    bridge = Bridge(load_config(path, plugins), plugins)
    bridge.database.ensure_schema()
    sock = listening_socket()
    url = "http://{}:{}".format(*sock.getsockname()[:2])
    with serving(bridge, sock):
        yield Board(url, bridge, platform)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run .ci/chromium (it installs Debian's chromium package); "
            "Playwright never downloads a browser for these tests"
        )
    with sync_playwright() as playwright:
        yield _launch(playwright)


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) reading Chinese, at a tablet's size."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    yield context
    context.close()


def order_id() -> str:
    return f"B{time.monotonic_ns() % 10**9}-{next(_orders)}"


def log_in(page: Page, board: Board, token: str = TOKEN) -> None:
    page.goto(f"{board.url}/board")
    page.wait_for_url("**/board/login**")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{board.url}/board")
    expect(page.locator("#live")).to_have_attribute("data-live", "yes")


def card(page: Page, order: str, lane: str = "") -> Any:
    return page.locator(f"{lane} .card[data-key='testpay/{order}']")


def created(board: Board, order: str, **extra: Any) -> None:
    board.push(order, "order.created", price=PRICE, **extra)


# --------------------------------------------------------------------------- logging in


def test_a_wrong_token_fails_and_the_right_one_shows_the_board(
    board: Board, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(f"{board.url}/board")
    page.wait_for_url("**/board/login**")
    page.fill("#token", "not-a-token")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "waimai_board"]

    log_in(page, board)
    expect(page.locator("h1")).to_have_text("订单看板")
    [cookie] = [c for c in context.cookies() if c["name"] == "waimai_board"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"


def test_logout_returns_to_the_login_page(board: Board, context: BrowserContext) -> None:
    page = context.new_page()
    log_in(page, board)
    page.click("#logout")
    page.wait_for_url("**/board/login**")
    page.goto(f"{board.url}/board")
    page.wait_for_url("**/board/login**")


# --------------------------------------------------------------------------- live


def test_a_push_appears_live_in_the_needs_action_lane(
    board: Board, context: BrowserContext
) -> None:
    page = context.new_page()
    log_in(page, board)
    page.evaluate("window.loadedOnce = true")
    order = order_id()
    created(board, order, day_seq=17, remark="少辣，多放香菜")

    found = card(page, order, "#needs-action")
    expect(found).to_be_visible()
    expect(found.locator(".seq")).to_have_text("#17")
    expect(found.locator(".state")).to_have_text("新订单")
    expect(found.locator(".items li")).to_have_text("2× rice")
    expect(found.locator(".remark")).to_contain_text("少辣，多放香菜")
    expect(found.locator(".user-paid")).to_have_text("¥26.00")
    expect(found.locator(".income")).to_have_text("¥18.00")
    expect(found.locator(".badge")).to_have_text("Test pay")
    expect(found).to_have_class(re.compile(r"\bfresh\b"))
    assert page.evaluate("window.loadedOnce") is True  # never reloaded

    board.push(order, "order.accepted")  # stored now: its line maps to no product
    stored = card(page, order, "#today")
    expect(stored.locator(".state")).to_have_text("已支付")
    expect(stored).to_have_class(re.compile(r"\banomalous\b"))
    expect(stored.locator(".anomalies li[data-rule=unmapped_sku]")).to_contain_text("商品未匹配")
    expect(card(page, order, "#needs-action")).to_have_count(0)


def test_the_first_render_holds_todays_orders(board: Board, context: BrowserContext) -> None:
    order = order_id()
    created(board, order, day_seq=3)
    page = context.new_page()
    log_in(page, board)
    page.reload()
    expect(card(page, order, "#needs-action").locator(".seq")).to_have_text("#3")
    embedded = page.evaluate(
        "JSON.parse(document.getElementById('board-data').textContent).cards"
        ".map((card) => card.platform_order_id)"
    )
    assert order in embedded


# --------------------------------------------------------------------------- acting


def test_confirm_double_clicked_is_one_action_that_ends_done(
    board: Board, context: BrowserContext
) -> None:
    page = context.new_page()
    log_in(page, board)
    order = order_id()
    created(board, order)
    found = card(page, order, "#needs-action")
    found.locator("button[data-action=confirm]").dblclick()

    expect(found.locator(".recent li[data-action=confirm]")).to_have_attribute(
        "data-status", "done"
    )
    assert board.actions(order) == [("confirm", "done")]
    assert [call.action for call in board.platform.calls_of(order)] == ["confirm"]


def test_cancel_with_a_reason_shows_the_platforms_refusal(
    board: Board, context: BrowserContext
) -> None:
    page = context.new_page()
    log_in(page, board)
    order = order_id()
    created(board, order)
    board.push(order, "order.accepted")
    found = card(page, order, "#today")
    found.locator("button[data-action=cancel]").click()
    found.locator(".reason select").select_option("店铺太忙")
    found.locator(".reason button.send").click()

    failed = found.locator(".recent li[data-action=cancel]")
    expect(failed).to_have_attribute("data-status", "failed")
    expect(failed).to_contain_text(TOO_LATE)
    [call] = board.platform.calls_of(order)
    assert (call.action, call.reason) == ("cancel", "店铺太忙")


def test_a_read_only_token_sees_no_buttons_and_cannot_act(
    board: Board, context: BrowserContext
) -> None:
    page = context.new_page()
    log_in(page, board, VIEWER_TOKEN)
    order = order_id()
    created(board, order)
    found = card(page, order, "#needs-action")
    expect(found).to_be_visible()
    expect(page.locator("#read-only")).to_be_visible()
    expect(found.locator("button")).to_have_count(0)
    status = page.evaluate(
        """async (order) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch(`/api/v1/platform-orders/testpay/${order}/actions`, {
                method: "POST",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                body: JSON.stringify({action: "confirm", idempotency_key: "viewer-1"}),
            });
            return answer.status;
        }""",
        order,
    )
    assert status == 403
    assert board.actions(order) == []


# --------------------------------------------------------------------------- language, size


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh-TW;q=0.5", "zh"),
        ("fr-FR", "en"),
        ("zh;q=0, en;q=0.1", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_the_language_is_the_first_the_board_has(header: str | None, lang: str) -> None:
    assert board_i18n.language(header) == lang


def test_both_languages_label_everything() -> None:
    zh, en = board_i18n.LABELS["zh"], board_i18n.LABELS["en"]
    assert set(zh) == set(en)
    wanted = [f"anomaly.{rule.value}" for rule in AnomalyRule]
    wanted += [f"action.{action.value}" for action in Action]
    wanted += [f"state.{state}" for state in board_i18n.STATES]
    assert [key for key in wanted if key not in zh] == []
    assert set(board_i18n.STATES) == board_store.STATES


@pytest.mark.parametrize(
    ("locale", "title", "lane"),
    [("en-US", "Order board", "Needs action"), ("zh-CN", "订单看板", "待处理")],
)
def test_the_language_follows_accept_language(
    board: Board, browser: Browser, locale: str, title: str, lane: str
) -> None:
    context = browser.new_context(locale=locale)
    try:
        page = context.new_page()
        log_in(page, board)
        expect(page.locator("h1")).to_have_text(title)
        expect(page.locator("#needs-action h2")).to_contain_text(lane)
        assert page.locator("html").get_attribute("lang") == locale.split("-")[0] + (
            "-CN" if locale.startswith("zh") else ""
        )
    finally:
        context.close()


def test_a_phone_width_needs_no_horizontal_scrolling(board: Board, browser: Browser) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        page.goto(f"{board.url}/board/login")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        log_in(page, board)
        order = order_id()
        created(board, order, day_seq=101, remark="不要辣" * 40)
        expect(card(page, order, "#needs-action")).to_be_visible()
        page.locator(f".card[data-key='testpay/{order}'] button[data-action=cancel]").click()
        expect(page.locator(".reason")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()

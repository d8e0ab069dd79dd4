"""The order board's server side: logging in with an API token (a signed cookie, a CSRF
token), the actions API through that session, today's cards, and the live events over a
real server (one tailer of the change feed for every viewer, a reconnect replaying what
was missed)."""

from __future__ import annotations

import json
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event, select

from tests import testpay
from tests.conftest import clear
from tests.processes import wait_until
from tests.sample_plugin import PRICE
from tests.test_hold import HOLD_MS, STORE, T0, Worker, working
from tests.test_pipeline import SECRET, TOKEN, config_text
from waimai_bridge.action_rules import DEFAULT_ANSWERS
from waimai_bridge.config import load_config
from waimai_bridge.demo.stack import listening_socket
from waimai_bridge.models import Action, ActionOutcome, ActionRequest, ActionResult
from waimai_bridge.plugin_api import PluginConfig, hookimpl
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import board, changes
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Order, OutboundAction, PlatformOrder
from waimai_bridge.web.app import BridgeApp, create_app
from waimai_bridge.web.board_api import (
    CLOSED,
    QUEUE_SIZE,
    REPLAY_LIMIT,
    RESYNC,
    TICK_S,
    BoardFeed,
    FeedPosition,
    Pushed,
    Viewer,
    feed_of,
)
from waimai_bridge.web.board_session import COOKIE, verify

READER = "board-reader-token-0001"
ACTIONS = ["confirm", "cancel", "agree_cancel", "reject_cancel"]


def acting_testpay() -> types.ModuleType:
    """The test platform, acting: it supports confirm, cancel and answering a cancel
    request, and the platform does each."""
    module = types.ModuleType("acting_testpay")
    module.__dict__.update(vars(testpay))
    capabilities = [*testpay.MANIFEST["capabilities"]]
    if "outbound_action" not in capabilities:
        capabilities.append("outbound_action")
    manifest = {**testpay.MANIFEST, "capabilities": capabilities, "actions": ACTIONS}

    @hookimpl
    def plugin_manifest() -> dict[str, Any]:
        return manifest

    @hookimpl
    def outbound_action(action: ActionRequest, config: PluginConfig) -> ActionResult:
        return ActionResult(outcome=ActionOutcome.DONE, code="ok", message="done by testpay")

    module.plugin_manifest = plugin_manifest  # type: ignore[attr-defined]
    module.outbound_action = outbound_action  # type: ignore[attr-defined]
    return module


def registry() -> PluginRegistry:
    plugins = PluginRegistry.discover(blocked=())
    plugins.add(testpay.NAME, acting_testpay())
    return plugins


TOKENS = (
    f'api_tokens = [{{ token = "{TOKEN}", name = "till" }}, '
    f'{{ token = "{READER}", name = "viewer", scopes = ["read"] }}]'
)


def jar(cookie: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers with the board's session cookie."""
    return {"Cookie": f"{COOKIE}={cookie}", **(headers or {})}


@dataclass
class Board:
    """The bridge served on a real port, an HTTP client of it, and its app."""

    http: httpx.Client
    app: BridgeApp
    bridge: Bridge

    def push(self, order: str, code: str, n: int = 0, **extra: Any) -> None:
        body = testpay.push(f"{order}:{code}", order, code, T0 + n * 1000, **extra)
        headers = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
        assert self.http.post("/webhooks/testpay", content=body, headers=headers).is_success

    def login(self, token: str = TOKEN) -> tuple[str, str]:
        """A session's cookie and CSRF token."""
        answer = self.http.post("/board/login", data={"token": token})
        assert answer.status_code == 303, answer.text
        cookie = answer.cookies[COOKIE]
        session = verify(cookie, self.bridge.config.bridge.api_tokens, int(time.time()))
        assert session is not None
        return cookie, session.csrf

    def cards(self, cookie: str, **filters: Any) -> list[dict[str, Any]]:
        answer = self.http.get("/board/orders", params=filters, headers=jar(cookie))
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["cards"]
        return found

    def card(self, cookie: str, order: str, check: Callable[[dict[str, Any]], bool]) -> Any:
        """The order's card once ``check`` holds for it."""

        def found() -> dict[str, Any] | None:
            for card in self.cards(cookie):
                if card["platform_order_id"] == order and check(card):
                    return card
            return None

        return wait_until(found, 10, f"the card of {order}")

    @property
    def feed(self) -> BoardFeed:
        return feed_of(self.app)


@contextmanager
def served(bridge: Bridge) -> Iterator[tuple[str, BridgeApp]]:
    app = create_app(bridge)
    sock = listening_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, "the server started")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def _board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    folder = tmp_path_factory.mktemp("board")
    text = config_text(f"sqlite:///{folder / 'bridge.sqlite3'}")
    path = folder / "bridge.toml"
    path.write_text(text.replace(f'api_tokens = ["{TOKEN}"]', TOKENS), "utf-8")
    plugins = registry()
    bridge = Bridge(load_config(path, plugins), plugins)
    http = httpx.Client(timeout=10)
    http.event_hooks["response"] = [lambda _: http.cookies.clear()]  # each request says its own
    with served(bridge) as (url, app), http:
        http.base_url = httpx.URL(url)
        yield Board(http, app, bridge)


@pytest.fixture
def board_(_board: Board) -> Board:
    clear(_board.bridge.database)
    return _board


# --------------------------------------------------------------------------- the session


def test_a_token_logs_in_with_a_strict_http_only_cookie_and_logs_out(board_: Board) -> None:
    answer = board_.http.post("/board/login", data={"token": TOKEN, "next": "/board?store=S001"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/board?store=S001")
    set_cookie = answer.headers["set-cookie"].lower()
    assert set_cookie.startswith(f"{COOKIE}=till.")
    assert {"httponly", "samesite=strict", "path=/"} <= {
        part.strip() for part in set_cookie.split(";")
    }
    assert "secure" not in set_cookie  # plain http here
    cookie = answer.cookies[COOKIE]
    assert board_.http.get("/board/orders", headers=jar(cookie)).status_code == 200
    elsewhere = board_.http.post("/board/login", data={"token": TOKEN, "next": "//evil.test/"})
    assert elsewhere.headers["location"] == "/board"

    refused = board_.http.post("/board/logout", headers=jar(cookie))
    assert refused.status_code == 403  # no CSRF token
    session = verify(cookie, board_.bridge.config.bridge.api_tokens, int(time.time()))
    assert session is not None
    out = board_.http.post("/board/logout", data={"csrf": session.csrf}, headers=jar(cookie))
    assert (out.status_code, out.headers["location"]) == (303, "/board/login")
    assert (
        f'{COOKIE}=""' in out.headers["set-cookie"]
        or "max-age=0" in out.headers["set-cookie"].lower()
    )


def test_a_wrong_token_sets_no_cookie(board_: Board) -> None:
    for form in ({"token": "not-a-configured-token"}, {"token": TOKEN + "x"},
                 {"token": "x" * 500}, {"other": TOKEN}):  # fmt: skip
        answer = board_.http.post("/board/login", data=form)
        assert (answer.status_code, answer.headers["location"]) == (303, "/board/login?error=1")
        assert "set-cookie" not in answer.headers
    many = board_.http.post("/board/login", data={f"f{n}": TOKEN for n in range(10)})
    assert many.status_code == 400
    forged = f"till.{int(time.time()) + 3600}.nonce.{'0' * 64}"
    assert board_.http.get("/board/orders", headers=jar(forged)).status_code == 401
    assert board_.http.get("/api/v1/orders", headers=jar(forged)).status_code == 401
    assert board_.http.get("/board/orders").status_code == 401


def test_the_api_takes_the_session_and_its_csrf_token(board_: Board) -> None:
    cookie, csrf = board_.login()
    board_.push("A-1", "order.created", price=PRICE)
    board_.card(cookie, "A-1", lambda card: True)
    assert board_.http.get("/api/v1/orders", headers=jar(cookie)).status_code == 200
    url = "/api/v1/platform-orders/testpay/A-1/actions"
    ask = {"action": "confirm", "idempotency_key": "board:A-1:confirm"}
    without = board_.http.post(url, json=ask, headers=jar(cookie))
    assert without.status_code == 403
    assert "X-CSRF-Token" in without.json()["error"]
    forged = csrf[:-1] + ("1" if csrf.endswith("0") else "0")  # never the token itself
    wrong = board_.http.post(url, json=ask, headers=jar(cookie, {"X-CSRF-Token": forged}))
    assert wrong.status_code == 403
    answer = board_.http.post(url, json=ask, headers=jar(cookie, {"X-CSRF-Token": csrf}))
    assert answer.status_code == 202, answer.text
    again = board_.http.post(url, json=ask, headers=jar(cookie, {"X-CSRF-Token": csrf}))
    assert (again.status_code, again.json()["id"]) == (200, answer.json()["id"])

    def done() -> bool:
        found = board_.http.get(f"/api/v1/actions/{answer.json()['id']}", headers=jar(cookie))
        return bool(found.json()["status"] == "done")

    wait_until(done, 10, "the action done")
    with board_.bridge.database.transaction() as session:
        assert session.scalars(select(OutboundAction.action)).all() == ["confirm"]
    card = board_.card(cookie, "A-1", lambda card: card["recent_actions"][:1] != [])
    assert card["recent_actions"][0] | {"message": None} == {
        "id": answer.json()["id"], "action": "confirm", "status": "done", "message": None,
    }  # fmt: skip

    reader, reader_csrf = board_.login(READER)
    assert board_.http.get("/api/v1/orders", headers=jar(reader)).status_code == 200
    cancel = {"action": "cancel", "idempotency_key": "board:A-1:cancel"}
    refused = board_.http.post(url, json=cancel, headers=jar(reader, {"X-CSRF-Token": reader_csrf}))
    assert refused.status_code == 403
    assert "'act'" in refused.json()["error"]
    bearer = board_.http.get("/api/v1/orders", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


# --------------------------------------------------------------------------- the cards


def test_the_cards_of_today(board_: Board) -> None:
    cookie, _ = board_.login()
    board_.push("N-1", "order.created", price=PRICE)
    board_.push("S-1", "order.created", price=PRICE)
    board_.push("S-1", "order.accepted", 1)
    board_.push("R-1", "order.created", price=PRICE)
    board_.push("R-1", "order.accepted", 1)
    board_.push("R-1", "cancel.requested", 2)
    board_.push("X-1", "order.created", price=PRICE, shop="100002")

    new = board_.card(cookie, "N-1", lambda card: True)
    assert new["state"] == "new"
    assert new["needs_action"] is True
    assert {"confirm", "cancel"} <= set(new["actions"])
    assert new["platform_state"] == {"code": 10, "name": "created"}
    assert (new["order_id"], new["request"], new["store_id"]) == (None, None, STORE)
    assert new["items"] == [{"name": "rice", "quantity": 2, "unmapped": False}]
    assert (new["user_paid"], new["merchant_income"]) == (2600, 1800)
    assert set(new) == {
        "key", "platform", "platform_order_id", "order_id", "store_id", "day_seq", "remark",
        "state", "platform_state", "rider_state", "request", "items", "user_paid",
        "merchant_income", "anomalies", "actions", "recent_actions", "needs_action",
        "created_at", "updated_at",
    }  # fmt: skip

    stored = board_.card(cookie, "S-1", lambda card: card["anomalies"] != [])
    assert stored["state"] == "paid"
    assert stored["needs_action"] is False
    assert isinstance(stored["order_id"], int)
    assert stored["items"] == [{"name": "rice", "quantity": 2, "unmapped": True}]
    assert [a["rule"] for a in stored["anomalies"]] == ["unmapped_sku"]
    assert "confirm" not in stored["actions"]
    assert "cancel" in stored["actions"]

    asked = board_.card(cookie, "R-1", lambda card: card["request"] == "cancel")
    assert asked["needs_action"] is True
    assert {"agree_cancel", "reject_cancel"} <= set(asked["actions"])

    board_.card(cookie, "X-1", lambda card: True)
    keys = [card["platform_order_id"] for card in board_.cards(cookie)]
    assert keys == ["X-1", "R-1", "S-1", "N-1"]  # newest first
    assert [c["platform_order_id"] for c in board_.cards(cookie, store_id="S002")] == ["X-1"]
    assert [c["platform_order_id"] for c in board_.cards(cookie, state="new")] == ["X-1", "N-1"]
    assert [c["platform_order_id"] for c in board_.cards(cookie, state="paid")] == ["S-1"]
    assert board_.cards(cookie, platform="other") == []
    unknown = board_.http.get("/board/orders", params={"state": "x"}, headers=jar(cookie))
    assert unknown.status_code == 400
    answer = board_.http.get("/board/orders", headers=jar(cookie)).json()
    with board_.bridge.database.transaction() as session:
        assert answer["last_id"] == changes.last_id(session) > 0
        tomorrow = board_.bridge.clock() + 86_400_000
        assert board.cards(session, lambda _: (frozenset(), DEFAULT_ANSWERS), now_ms=tomorrow) == []


def _rules(platform: str) -> tuple[frozenset[Action], Any]:
    return frozenset({Action.CONFIRM, Action.CANCEL}), DEFAULT_ANSWERS


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[Worker]:
    with working(database, tmp_path, "[anomalies]\ninterval_seconds = 0") as made:
        yield made


def test_cards_take_the_same_queries_however_many(worker: Worker) -> None:
    """On SQLite and PostgreSQL: the page's queries, the recent actions' window among them."""
    for n, order in enumerate(["P-1", "P-2", "P-3"]):
        worker.receive(order, "order.created", T0 + n, price=PRICE)
        worker.apply()
    worker.receive("P-1", "order.accepted", T0 + 5)
    worker.apply()
    worker.now = T0 + 5 + HOLD_MS
    worker.release("P-1")
    with worker.bridge.database.transaction() as session:
        for n in range(7):
            session.add(OutboundAction(
                idempotency_key=f"k{n}", action="cancel", platform="testpay",
                platform_order_id="P-2", store_id=STORE, status="failed", attempts=1,
                attempt_limit=1, next_attempt_at_ms=T0, result_message=f"no {n}",
                created_at_ms=T0, updated_at_ms=T0,
            ))  # fmt: skip
    statements: list[str] = []
    engine = worker.bridge.database.engine

    def count(*args: Any) -> None:
        if args[2].startswith("SELECT"):
            statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with worker.bridge.database.transaction() as session:
            every = board.cards(session, _rules, now_ms=worker.now)
            assert len(statements) == 5  # orders, lines, anomalies, actions, logs
            one = board.card(session, "testpay", "P-2", _rules)
            assert board.card(session, "testpay", "NOPE", _rules) is None
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [card["platform_order_id"] for card in every] == ["P-3", "P-2", "P-1"]
    assert one is not None
    assert one == every[1]
    assert [a["message"] for a in one["recent_actions"]] == [f"no {n}" for n in (6, 5, 4, 3, 2)]
    assert every[2]["state"] == "paid"
    assert every[2]["items"][0]["unmapped"] is True


# --------------------------------------------------------------------------- live events


class Events:
    """An open event stream, read an event at a time."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines

    def next(self) -> dict[str, str]:
        """The next event (a comment or ``retry`` alone is none)."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if "event" in fields:
                    return fields
                fields = {}
                continue
            name, _, value = line.partition(":")
            if name:
                fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    def next_order(self) -> tuple[str, tuple[int, dict[str, Any]]]:
        """The next order event: the order, its id and card."""
        id_, card = self.until(lambda card: True)
        return card["platform_order_id"], (id_, card)

    def until(self, check: Callable[[dict[str, Any]], bool]) -> tuple[int, dict[str, Any]]:
        """The id and card of the first order event whose card passes ``check``."""
        while True:
            found = self.next()
            if found["event"] == "order" and check(card := json.loads(found["data"])):
                return int(found["id"]), card


@contextmanager
def events(board_: Board, cookie: str, **headers: str) -> Iterator[Events]:
    timeout = httpx.Timeout(10, read=10)
    with board_.http.stream(
        "GET", "/board/events", headers=jar(cookie, headers), timeout=timeout
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = answer.iter_lines()
        assert next(lines) == "retry: 2000"
        yield Events(lines)


def test_a_viewer_sees_changes_live_and_a_reconnect_replays_what_it_missed(
    board_: Board,
) -> None:
    cookie, _ = board_.login()
    with events(board_, cookie) as stream:
        wait_until(lambda: board_.feed.ticks > 0 and board_.feed.tailing, 10, "tailing")
        board_.push("E-1", "order.created", price=PRICE)
        seen, card = stream.until(lambda card: card["platform_order_id"] == "E-1")
        assert (card["state"], card["needs_action"], card["user_paid"]) == ("new", True, 2600)
    wait_until(lambda: not board_.feed.tailing, 10, "the tailer stopped with its last viewer")

    board_.push("E-1", "order.accepted", 1)
    board_.push("E-2", "order.created")

    def missed() -> dict[str, str | None]:
        """The orders changed since ``seen``, with the state of their stored order."""
        with board_.bridge.database.transaction() as session:
            ids = {row.platform_order_id for row in changes.since(session, seen)}
            rows = session.execute(
                select(PlatformOrder.platform_order_id, Order.state)
                .outerjoin(Order, Order.id == PlatformOrder.order_id)
                .where(PlatformOrder.platform_order_id.in_(ids))
            )
            return {order: state for order, state in rows}

    # E-1's acceptance itself, not any two changes: its creation may note more than one
    wait_until(lambda: missed() == {"E-1": "paid", "E-2": None}, 10, "the changes missed")
    with events(board_, cookie, **{"Last-Event-ID": str(seen)}) as stream:
        replayed = dict(stream.next_order() for _ in range(2))
    assert {order: card["state"] for order, (_, card) in replayed.items()} == {
        "E-1": "paid",
        "E-2": "new",
    }
    assert min(id_ for id_, _ in replayed.values()) > seen


def test_two_viewers_share_one_tailing_query_per_tick(board_: Board) -> None:
    cookie, _ = board_.login()
    reads: list[str] = []

    def count(*args: Any) -> None:
        if "FROM changes" in args[2] and "changes.id >" in args[2]:
            reads.append(args[2])

    engine = board_.bridge.database.reading_engine  # the feed only reads
    with events(board_, cookie) as one, events(board_, cookie) as two:
        wait_until(lambda: len(board_.feed.viewers) == 2 and board_.feed.ticks > 0)
        event.listen(engine, "before_cursor_execute", count)
        started = time.monotonic()
        try:
            board_.push("D-1", "order.created")
            assert one.until(lambda card: card["platform_order_id"] == "D-1")[1]["state"] == "new"
            assert two.until(lambda card: card["platform_order_id"] == "D-1")[1]["state"] == "new"
            time.sleep(max(0.0, started + 2 - time.monotonic()))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        ticks = (time.monotonic() - started) / TICK_S
        assert ticks / 2 <= len(reads) <= ticks + 1  # one read a tick, not one per viewer
    wait_until(lambda: not board_.feed.tailing, 10, "the tailer stopped")


# --------------------------------------------------------------------------- the feed's parts


def test_a_viewer_that_falls_behind_resyncs_and_others_stores_are_not_queued() -> None:
    viewer = Viewer("S001")
    viewer.offer(Pushed(1, "S002", "{}"))
    assert viewer.queue.empty()
    for n in range(QUEUE_SIZE + 1):
        viewer.offer(Pushed(n, "S001", "{}"))
    assert viewer.queue.qsize() == 1
    assert viewer.queue.get_nowait() is RESYNC
    viewer.offer(CLOSED)
    assert viewer.queue.get_nowait() is CLOSED


def test_the_tailer_waits_a_while_for_a_change_committed_late() -> None:
    def noted(*ids: int) -> list[changes.Noted]:
        return [changes.Noted(n, "testpay", f"O-{n}", STORE, None, "order", 0) for n in ids]

    position = FeedPosition(10)
    assert [row.id for row in position.take(noted(11, 13), now_s=0)] == [11, 13]
    assert position.after() == 11  # 12 was taken by a transaction not committed yet
    assert [row.id for row in position.take(noted(12, 13, 14), now_s=1)] == [12, 14]
    assert position.after() == 14
    position.take(noted(16), now_s=2)
    assert position.after() == 14
    assert position.take([], now_s=100) == []
    assert position.after() == 16


def test_a_reconnect_too_far_behind_resyncs(board_: Board) -> None:
    with board_.bridge.database.transaction() as session:
        changes.note(
            session,
            [changes.Changed("testpay", f"O-{n}", STORE, None, "order") for n in range(501)],
            now_ms=T0,
        )
    assert REPLAY_LIMIT == 500
    assert board_.feed.replay(0, None) is None
    assert board_.feed.replay(0, "S002") == ([], set())


def test_a_board_s_day_starts_at_midnight_in_the_store_s_zone() -> None:
    from zoneinfo import ZoneInfo

    from waimai_bridge.store.board import day_start_ms

    noon_utc = 1_765_022_400_000  # 2025-12-06 12:00 UTC
    assert day_start_ms(noon_utc) == 1_764_950_400_000  # 2025-12-06 00:00 +08:00
    los_angeles = ZoneInfo("America/Los_Angeles")
    assert day_start_ms(noon_utc, los_angeles) == 1_765_008_000_000  # 2025-12-06 00:00 −08:00

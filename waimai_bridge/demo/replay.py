"""Playing the lunch service into the running bridge over HTTP: the pushes on their
schedule, then the actions through the API, then waiting for the pipeline to settle."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from sqlalchemy import func, select

from waimai_bridge.demo.channel import DemoChannel, DemoFake, DemoOrder, DemoPush
from waimai_bridge.demo.schedule import Phase, Send, platform_ms
from waimai_bridge.demo.summary import outcomes
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import InboxEvent, OutboundAction, PlatformOrder

ACTION_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0
POLL_S = 0.1

HELD_CLAUSE = PlatformOrder.order_id.is_(None) & PlatformOrder.discarded.is_(False)
"""Platform orders still waiting out their accept hold (or never accepted)."""


@dataclass(frozen=True)
class Play:
    """One order in play: its channel, the order as the channel wrote it, and validated."""

    channel: DemoChannel
    raw: Mapping[str, Any]
    order: DemoOrder


@dataclass(frozen=True)
class ActionRun:
    """How an action went: the bridge's view and the fake platform's."""

    play: Play
    action_id: int | None
    status: str
    attempts: int
    calls: Sequence[bool]
    problem: str | None = None


@dataclass
class Drops:
    """The platforms failing to push a share of the pushes, each told to its fake
    (``pushed(push, delivered=False)``) for the bridge to pull or fetch."""

    share: float
    rng: random.Random
    fakes: Mapping[str, DemoFake]
    pulling: frozenset[str]
    """The platforms the bridge pulls from (any push may be lost). The others' orders can
    only be read again, which brings the full order and its state but not every message
    (a rider's, a refund's), so there only an order's first push may be lost, and only
    when another follows (a bridge cannot read an order it never heard of)."""
    lost: list[DemoPush] = field(default_factory=list)
    """The pushes the platforms failed to send, in order."""
    seen: set[tuple[str, str]] = field(default_factory=set)

    @property
    def dropped(self) -> int:
        """How many pushes the platforms failed to send."""
        return len(self.lost)

    def told(self, play: Play, push: DemoPush, base_url: str) -> bool:
        """Tell the platform's fake of a push; True when the platform failed to send it."""
        tell = getattr(self.fakes.get(play.channel.platform), "pushed", None)
        if tell is None:
            return False
        order = (play.channel.platform, play.order.platform_order_id)
        first, steps = order not in self.seen, len(play.order.placing) + len(play.order.service)
        self.seen.add(order)
        drop = self.rng.random() < self.share and (
            order[0] in self.pulling or (first and steps > 1)
        )
        tell(_as_fixture(push, base_url), delivered=not drop)
        if drop:
            self.lost.append(push)
        return drop


def _as_fixture(push: DemoPush, base_url: str) -> dict[str, Any]:
    """A push as a fake is told of it: ``{"method", "url", "kind", "query", "headers",
    "body"}`` (see ``waimai_bridge.harness.fake``)."""
    path, _, query = push.path.partition("?")
    segments = path.removeprefix("/webhooks/").split("/")
    return {
        "method": push.method, "url": base_url + path,
        "kind": segments[1] if len(segments) > 1 else None,
        "query": [list(pair) for pair in parse_qsl(query, keep_blank_values=True)],
        "headers": dict(push.headers), "body": push.body.decode("utf-8"),
    }  # fmt: skip


@dataclass
class Replay:
    """The HTTP side of a run: sends pushes and asks actions, counting what happened."""

    client: httpx.Client
    base_url: str
    lunch_start_ms: int
    drops: Drops | None = None
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    refused: list[str] = field(default_factory=list)

    def elapsed_ms(self) -> int:
        """Demo milliseconds since the start of the service."""
        return int((time.monotonic() - self.started) * 1000)

    def wait_until(self, at_ms: int) -> None:
        """Sleep until ``at_ms`` demo milliseconds after the start."""
        delay = at_ms / 1000 - (time.monotonic() - self.started)
        if delay > 0:
            time.sleep(delay)

    def push(self, play: Play, step: str, at_ms: int) -> None:
        """Build ``play``'s ``step`` dated ``at_ms`` (demo time) and send it."""
        built = play.channel.push(
            play.raw, step, platform_ms(self.lunch_start_ms, at_ms), self.base_url
        )
        request = built if isinstance(built, DemoPush) else DemoPush.model_validate(built)
        if self.drops is not None and self.drops.told(play, request, self.base_url):
            return
        answer = self.client.request(
            request.method, request.path, content=request.body or None, headers=request.headers
        )
        self.sent += 1
        if answer.status_code != 200:
            self.refused.append(
                f"{play.channel.platform} {play.order.platform_order_id} step {step}: "
                f"HTTP {answer.status_code} {answer.text[:200]}"
            )

    def play(
        self, sends: Sequence[Send], plays: Sequence[Play], tick: Callable[[Phase], None]
    ) -> None:
        """Send every scheduled push when it is due."""
        for send in sends:
            self.wait_until(send.at_ms)
            self.push(plays[send.order], send.step, send.at_ms)
            tick(send.phase)

    def act(
        self,
        plays: Sequence[Play],
        fakes: Mapping[str, DemoFake],
        run: int,
        tick: Callable[[Phase], None],
    ) -> list[ActionRun]:
        """Ask every order's action through the API, wait for each to end, and send the
        pushes the platform sends once it is done."""
        asked: list[tuple[Play, int | None, str | None]] = []
        for play in plays:
            action = play.order.action
            assert action is not None
            fake = fakes.get(play.channel.platform)
            if fake is not None and action.transient_failures:
                fake.fail_next(action.action, action.transient_failures)
            action_id, problem = self._ask(play, run)
            asked.append((play, action_id, problem))
        runs = []
        for play, action_id, problem in asked:
            action = play.order.action
            assert action is not None
            view = self._settled_action(action_id) if action_id is not None else {}
            fake = fakes.get(play.channel.platform)
            calls = list(fake.calls(action.action)) if fake is not None else []
            runs.append(
                ActionRun(
                    play, action_id, str(view.get("status", "not asked")),
                    int(view.get("attempts", 0)), calls, problem,
                )
            )  # fmt: skip
            if view.get("status") == "done":
                for step in action.then:
                    self.push(play, step, self.elapsed_ms())
                    time.sleep(0.05)
            tick(Phase.ACTIONS)
        return runs

    def _ask(self, play: Play, run: int) -> tuple[int | None, str | None]:
        """POST the action once the order is stored and the request it answers is folded."""
        action = play.order.action
        assert action is not None
        order = play.order
        body = {
            "action": action.action.value,
            "reason": action.reason,
            "idempotency_key": f"demo-{run}-{play.channel.platform}-{order.platform_order_id}"
            f"-{action.action.value}",
        }
        deadline = time.monotonic() + ACTION_TIMEOUT_S
        last = "the order was never stored"
        while time.monotonic() < deadline:
            page = self.client.get(
                "/api/v1/orders",
                params={
                    "platform": play.channel.platform,
                    "platform_order_id": order.platform_order_id,
                },
            ).json()
            if page["items"]:
                answer = self.client.post(
                    f"/api/v1/orders/{page['items'][0]['id']}/actions", json=body
                )
                if answer.status_code in (200, 202):
                    return int(answer.json()["id"]), None
                last = f"HTTP {answer.status_code} {answer.text[:200]}"
                if answer.status_code != 409:
                    break
            time.sleep(POLL_S)
        return None, last

    def _settled_action(self, action_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + ACTION_TIMEOUT_S
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = self.client.get(f"/api/v1/actions/{action_id}").json()
            if view.get("status") != "pending":
                break
            time.sleep(POLL_S)
        return view


def recovered(database: Database, plays: Sequence[Play], *, timeout_s: float) -> bool:
    """Wait until every order is where its story ends (stored in its state, or not stored),
    as pulls and fetches bring what the platforms failed to push. False when it timed out."""
    wanted: dict[str, list[str]] = {}
    for play in plays:
        wanted.setdefault(play.channel.platform, []).append(play.order.platform_order_id)
    expected = {
        (play.channel.platform, play.order.platform_order_id): (
            None if play.order.expected_state is None else play.order.expected_state.value
        )
        for play in plays
    }
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with database.transaction() as session:
            seen = {(o.platform, o.platform_order_id): o.state for o in outcomes(session, wanted)}
        if all(seen.get(order) == state for order, state in expected.items()):
            return True
        time.sleep(POLL_S * 5)
    return False


def settle(database: Database, platform_order_ids: Mapping[str, Sequence[str]]) -> bool:
    """Wait until the pipeline has nothing left to do for the run: every inbox event
    applied, every hold released, every action ended. False when it timed out."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        with database.transaction() as session:
            busy = session.scalar(
                select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "pending")
            ) or session.scalar(
                select(func.count())
                .select_from(OutboundAction)
                .where(OutboundAction.status == "pending")
            )
            for platform, ids in platform_order_ids.items():
                busy = busy or session.scalar(
                    select(func.count())
                    .select_from(PlatformOrder)
                    .where(
                        PlatformOrder.platform == platform,
                        PlatformOrder.platform_order_id.in_(ids),
                        PlatformOrder.hold_started_at_ms.is_not(None),
                    )
                    .where(HELD_CLAUSE)
                )
        if not busy:
            return True
        time.sleep(POLL_S * 2)
    return False

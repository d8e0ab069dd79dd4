"""End to end: a backlog of whole lifecycles arrives within one accept hold (SPEC §5).

A platform redelivering a backlog after an outage brings every push of an order at once:
created, accepted, rider, completed, and perhaps a refund. The Eleme and Meituan plugins'
own scenarios (``fixtures/scenarios/*.json``) are sent shuffled and interleaved, in one go,
through real HTTP into ``serve`` (embedded: SQLite, in-process worker) and into ``serve`` +
``worker`` on Redis and PostgreSQL, with an accept hold longer than the sending. When the
holds are over, only the orders cancelled before completion are missing from the order
table; every other order is stored, in the state its scenario expects — completed and then
refunded in full is a sale with a refund, stored as refunded.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import (
    bridge_command,
    environment,
    free_port,
    plugin_site,
    processes,
    wait_until,
)
from waimai_bridge.harness.fixtures import RawRequest, Step, load_fixtures
from waimai_bridge.plugins import PluginRegistry

TOKEN = "backlog-api-token-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOLD_SECONDS = 6
"""Longer than sending every push takes, so each order's whole lifecycle is received within
its hold."""

NOT_STORED = {
    ("eleme", "force-invalidated"),  # force-invalidated (17) before completion
    ("meituan", "cancelled_after_acceptance"),  # accepted, then cancelled (17)
    ("meituan", "cancelled_before_acceptance"),  # never accepted: no hold, never stored
}
"""The scenarios whose order never enters the order table: cancelled before completion."""
REFUNDED_AFTER_COMPLETION = {
    ("eleme", "refund-agreed"),
    ("meituan", "completed_while_refund_pending_agreed"),
    ("meituan", "two_refunds_second_agreed"),
}
"""Completed, then refunded in full: stored, as refunded (the case a backlog used to lose)."""
PLATFORMS = ("eleme", "meituan")


@dataclass(frozen=True)
class Push:
    """One recorded push, ready to send."""

    platform: str
    request: RawRequest


@dataclass(frozen=True)
class Story:
    """A scenario: its order, whether it ends stored, and what it expects of the order."""

    platform: str
    name: str
    platform_order_id: str
    stored: bool
    expect: dict[str, Any]


def _folder(platform: str) -> Path:
    return Path(str(resources.files(f"waimai_bridge_{platform}").joinpath("fixtures")))


def backlog() -> tuple[list[Push], list[Story]]:
    """Every push of the two plugins' scenarios, and the story of each scenario."""
    registry = PluginRegistry.discover(blocked=())
    pushes: list[Push] = []
    stories: list[Story] = []
    for platform in PLATFORMS:
        fixtures = load_fixtures(_folder(platform), platform)
        assert fixtures.config is not None
        assert not fixtures.problems
        plugin = registry.platform(platform)
        for name, scenario in sorted(fixtures.scenarios.items()):
            requests = [
                step.request if isinstance(step, Step) else fixtures.pushes[step].request
                for step in scenario.steps
            ]
            orders = set()
            for request in requests:
                parsed = plugin.parse_event(
                    request.inbound(platform, fixtures.config), fixtures.config
                )
                assert parsed is not None
                orders |= {event.platform_order_id for event in parsed.events}
            assert len(orders) == 1, (platform, name, orders)
            short = name.removeprefix("scenarios/")
            stories.append(
                Story(platform, short, orders.pop(), (platform, short) not in NOT_STORED,
                      scenario.expect)
            )  # fmt: skip
            pushes += [Push(platform, request) for request in requests]
    covered = {(story.platform, story.name) for story in stories}
    assert covered >= NOT_STORED | REFUNDED_AFTER_COMPLETION
    assert len({story.platform_order_id for story in stories}) == len(stories)
    return pushes, stories


def config_text(database_url: str, broker_url: str) -> str:
    eleme = load_fixtures(_folder("eleme"), "eleme").config
    meituan = load_fixtures(_folder("meituan"), "meituan").config
    assert eleme is not None
    assert meituan is not None
    assert eleme.public_base_url == meituan.public_base_url
    stores = "".join(
        f'\n[stores.{store}]\nname = "{store}"\n'
        f"eleme = {{ shop_id = {eleme.stores[store]['shop_id']}, "
        f'token = "{eleme.stores[store]["token"]}" }}\n'
        f'meituan = {{ app_poi_code = "{meituan.stores[store]["app_poi_code"]}" }}\n'
        for store in sorted(eleme.stores)
    )
    e, m = eleme.settings, meituan.settings
    return f"""
[bridge]
database_url = "{database_url}"
broker_url = "{broker_url}"
public_base_url = "{eleme.public_base_url}"
shards = 4
accept_hold_seconds = {HOLD_SECONDS}
api_tokens = ["{TOKEN}"]
sweep_interval_seconds = 0.5
resend_after_seconds = 2

[platforms.eleme]
app_key = "{e["app_key"]}"
app_secret = "{e["app_secret"]}"
app_id = {e["app_id"]}

[platforms.meituan]
app_id = "{m["app_id"]}"
app_secret = "{m["app_secret"]}"
price_semantics = "{m["price_semantics"]}"
{stores}"""


def send(client: httpx.Client, push: Push) -> None:
    request = push.request
    path = f"/webhooks/{push.platform}" + (f"/{request.kind}" if request.kind else "")
    answer = client.request(
        request.method, path, params=tuple(request.query), headers=request.headers,
        content=request.body.encode("utf-8"),
    )  # fmt: skip
    assert answer.status_code == 200, (push.platform, path, answer.status_code, answer.text)


def outcome(client: httpx.Client, story: Story) -> dict[str, Any] | None:
    """The stored order of a story, None when it is not stored; raises until its hold is
    over (the platform order is not yet stored nor known to stay out)."""
    view = client.get(f"/api/v1/platform-orders/{story.platform}/{story.platform_order_id}")
    assert view.status_code == 200, view.text
    found = view.json()
    if found["order_id"] is None:
        return None
    answer = client.get(f"/api/v1/orders/{found['order_id']}")
    assert answer.status_code == 200, answer.text
    order: dict[str, Any] = answer.json()
    return order


FIELDS = {"state": "state", "rider_state": "rider_state", "saved_state": "saved_state",
          "refunded_amount_fen": "refunded_amount"}  # fmt: skip
"""What a scenario expects of the order, and the field of the API's order view holding it."""


def check(base: str, stories: list[Story], sent_at: float) -> None:
    with httpx.Client(base_url=base, headers=AUTH, timeout=10) as client:
        deadline = time.monotonic() + HOLD_SECONDS + 60
        while missing := [s.name for s in stories if s.stored and outcome(client, s) is None]:
            assert time.monotonic() < deadline, f"not stored: {missing}"
            time.sleep(0.2)
        # and every hold is over: each started before the last push was sent
        time.sleep(max(sent_at + HOLD_SECONDS + 2 - time.monotonic(), 0))
        for story in stories:
            order = outcome(client, story)
            where = f"{story.platform} scenario {story.name}"
            if not story.stored:
                assert order is None, f"{where}: cancelled within the hold, but stored"
                continue
            assert order is not None, where
            expected = {FIELDS[k]: v for k, v in story.expect.items() if k in FIELDS}
            actual = {field: order[field] for field in expected}
            assert actual == expected, where
            if (story.platform, story.name) in REFUNDED_AFTER_COMPLETION:
                assert order["state"] == "refunded", where


@pytest.fixture
def plan() -> tuple[list[Push], list[Story]]:
    pushes, stories = backlog()
    random.Random(25).shuffle(pushes)
    return pushes, stories


@pytest.mark.parametrize("mode", ["embedded", "redis+postgresql"])
def test_a_backlog_of_whole_lifecycles_within_the_hold_ends_as_each_story_says(
    mode: str, plan: tuple[list[Push], list[Story]], tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    pushes, stories = plan
    if mode == "embedded":
        database_url, broker_url = f"sqlite:///{tmp_path / 'backlog.sqlite3'}", ""
    else:
        database_url = request.getfixturevalue("empty_postgres_url")
        broker_url = request.getfixturevalue("redis_url")
    config = tmp_path / "bridge.toml"
    config.write_text(config_text(database_url, broker_url), "utf-8")
    env = environment(plugin_site(tmp_path / "site"))
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with processes(logs) as start:
        if broker_url:
            migrate = start("migrate", bridge_command(config, "migrate"), env)
            assert migrate.popen.wait(timeout=60) == 0, migrate.output()
            start("worker", bridge_command(config, "worker", "--threads", "2"), env)
        start("serve", bridge_command(config, "serve", "--port", str(port)), env)
        wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, "serve healthy")
        with httpx.Client(base_url=base, timeout=10) as client:
            for push in pushes:
                send(client, push)
        check(base, stories, time.monotonic())

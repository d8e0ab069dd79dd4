"""Auto-accept per store × channel, on SQLite and PostgreSQL: a created order of a channel
that auto-accepts gets one ``confirm`` action (however often its creation is pushed), one
that does not gets none; the config's default and the channels API that overrides it.

A bridge with the ``pullpay`` plugin (``testpay``'s pushes, and it can confirm) and
``testpay`` (which cannot), its app served without a worker: each test applies the inbox
itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import testpay
from tests.pullpay import NAME, PullPay
from tests.test_pipeline import T0, TOKEN
from waimai_bridge.config import load_config
from waimai_bridge.models import InboundRequest
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import channels
from waimai_bridge.store.database import Database
from waimai_bridge.web.app import create_app

SECRET = "auto-accept-secret"
READ_TOKEN = "auto-accept-read-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
STATIC = {"status": "static", "expires_at": None, "scope": None, "problem": None}
"""A channel's authorization without stored credentials: its config binding's."""
CONFIG = """
[bridge]
database_url = "{url}"
accept_hold_seconds = 60
api_tokens = ["{token}", {{ token = "{read_token}", name = "viewer", scopes = ["read"] }}]
{extra}

[platforms.pullpay]
secret = "{secret}"

[platforms.testpay]
secret = "{secret}"

[stores.S001]
pullpay = {{ shop = "100001" }}
testpay = {{ shop = "100001" }}

[stores.S002]
pullpay = {{ shop = "100002" }}
"""


class Accepting:
    """The bridge, its app (:attr:`client`) and the pullpay platform; the clock reads
    :attr:`now`."""

    def __init__(self, bridge: Bridge, client: TestClient, platform: PullPay) -> None:
        self.bridge = bridge
        self.client = client
        self.platform = platform
        self.now = T0

    def receive(
        self, key: str, order: str, code: str, *, platform: str = NAME, **extra: Any
    ) -> None:
        """A push of ``platform`` written to the inbox, not applied."""
        self.now += 1000
        body = testpay.push(key, order, code, self.now, **extra)
        request = InboundRequest(
            method="POST", url="u", kind=None, query=[], received_at_ms=self.now, body=body,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)},
        )  # fmt: skip
        parsed = self.bridge.registry.platform(platform).parse_event(
            request, self.bridge.config.plugin_config(platform)
        )
        assert parsed is not None
        write_pushes(self.bridge.pipeline, [(parsed.events, self.now)])

    def apply(self) -> None:
        """What workers do with the shards' messages: apply what the inbox holds."""
        for store in ("S001", "S002"):
            self.bridge.applier.process_shard(self.bridge.pipeline.shard_of(store))

    def actions(self) -> list[tuple[str, str, str | None]]:
        """Every action, as ``GET /api/v1/actions`` lists it: order, action, reason."""
        answer = self.client.get("/api/v1/actions", headers=AUTH)
        assert answer.status_code == 200
        return sorted(
            (row["platform_order_id"], row["action"], row["reason"]) for row in answer.json()
        )

    def turn(self, store: str, platform: str, on: bool) -> None:
        answer = self.client.put(
            f"/api/v1/stores/{store}/channels/{platform}", json={"auto_accept": on}, headers=AUTH
        )
        assert answer.status_code == 200, answer.text


@contextmanager
def accepting(database: Database, tmp_path: Path, extra: str = "") -> Iterator[Accepting]:
    """A bridge on ``database`` (``extra``: more ``[bridge]`` lines), served without a worker."""
    path = tmp_path / "bridge.toml"
    path.write_text(
        CONFIG.format(url=database.url, token=TOKEN, read_token=READ_TOKEN, secret=SECRET,
                      extra=extra),
        "utf-8",
    )  # fmt: skip
    platform = PullPay()
    registry = PluginRegistry()
    registry.add(NAME, platform)
    registry.add(testpay.NAME, testpay)
    holder: list[Accepting] = []
    bridge = Bridge(load_config(path, registry), registry, clock=lambda: holder[0].now)
    with TestClient(create_app(bridge, run_worker=False)) as client:
        holder.append(Accepting(bridge, client, platform))
        yield holder[0]


@pytest.fixture
def bridge(database: Database, tmp_path: Path) -> Iterator[Accepting]:
    with accepting(database, tmp_path) as made:
        yield made


def test_a_created_order_of_a_channel_that_auto_accepts_is_confirmed_once(
    bridge: Accepting, caplog: pytest.LogCaptureFixture
) -> None:
    bridge.turn("S001", NAME, True)
    bridge.receive("c1", "A-1", "order.created")
    bridge.apply()
    assert bridge.actions() == [("A-1", "confirm", "auto-accept")]

    bridge.receive("c1", "A-1", "order.created")  # the same push again
    bridge.receive("c1-again", "A-1", "order.created")  # its creation pushed twice
    bridge.apply()
    bridge.receive("c1-third", "A-1", "order.created")  # and once more, with its acceptance
    bridge.receive("a1", "A-1", "order.accepted")
    bridge.apply()
    assert bridge.actions() == [("A-1", "confirm", "auto-accept")]

    # performed like a person's click: the platform is called once
    [action] = bridge.client.get("/api/v1/actions", headers=AUTH).json()
    bridge.bridge.actions.perform(action["id"])
    assert [(call.platform_order_id, call.action.value) for call in bridge.platform.calls] == [
        ("A-1", "confirm")
    ]

    # an order created and accepted in one batch needs no confirm: refused, and logged
    with caplog.at_level(logging.INFO, logger="waimai_bridge.pipeline.auto_accept"):
        bridge.receive("c2", "A-2", "order.created")
        bridge.receive("a2", "A-2", "order.accepted")
        bridge.apply()
    assert bridge.actions() == [("A-1", "confirm", "auto-accept")]
    [refused] = [r for r in caplog.records if r.name == "waimai_bridge.pipeline.auto_accept"]
    assert refused.levelno == logging.INFO
    assert refused.getMessage().startswith(f"auto-accept of {NAME} order A-2 refused: confirm")


def test_auto_accept_is_off_by_default_and_set_per_store_and_channel(
    bridge: Accepting, caplog: pytest.LogCaptureFixture
) -> None:
    bridge.receive("c1", "B-1", "order.created")
    bridge.apply()
    assert bridge.actions() == []

    bridge.turn("S001", NAME, True)
    bridge.turn("S001", testpay.NAME, True)  # on, but its plugin cannot confirm
    bridge.receive("c2", "B-2", "order.created")
    bridge.receive("c3", "B-3", "order.created", shop="100002")  # S002: still off
    bridge.receive("c4", "B-4", "order.created", platform=testpay.NAME)
    with caplog.at_level(logging.INFO, logger="waimai_bridge.pipeline.auto_accept"):
        bridge.apply()
    assert bridge.actions() == [("B-2", "confirm", "auto-accept")]
    assert not [r for r in caplog.records if r.name == "waimai_bridge.pipeline.auto_accept"]

    bridge.receive("x6", "B-6", "cancel.requested")  # its creation never pushed: not confirmed
    bridge.apply()
    assert bridge.actions() == [("B-2", "confirm", "auto-accept")]

    bridge.turn("S001", NAME, False)
    bridge.receive("c5", "B-5", "order.created")
    bridge.apply()
    assert bridge.actions() == [("B-2", "confirm", "auto-accept")]


def test_the_configs_default_auto_accepts_every_channel_not_set_otherwise(
    database: Database, tmp_path: Path
) -> None:
    with accepting(database, tmp_path, "auto_accept = true") as bridge:
        listed = bridge.client.get("/api/v1/stores/S002/channels", headers=AUTH).json()
        assert listed["channels"] == [
            {"platform": NAME, "auto_accept": True, "source": "config", "authorization": STATIC}
        ]
        bridge.turn("S002", NAME, False)
        bridge.receive("c1", "D-1", "order.created")
        bridge.receive("c2", "D-2", "order.created", shop="100002")
        bridge.apply()
        assert bridge.actions() == [("D-1", "confirm", "auto-accept")]


def test_an_ask_lost_between_the_batch_and_the_action_is_made_by_the_sweep(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with accepting(database, tmp_path, "auto_accept = true") as bridge:
        bridge.turn("S002", NAME, False)
        bridge.receive("c1", "L-1", "order.created")
        bridge.receive("c2", "L-2", "order.created", shop="100002")  # not auto-accepted
        asks = bridge.bridge.auto_accept
        monkeypatch.setattr(asks, "created", lambda *batch: None)  # the worker dies on commit
        bridge.apply()
        monkeypatch.undo()
        assert bridge.actions() == []
        sweep = asks.sweep
        assert sweep(stale_after_ms=60_000, limit=10) == 0  # not stale yet
        bridge.now += 61_000
        assert sweep(stale_after_ms=60_000, limit=10) == 1
        assert bridge.actions() == [("L-1", "confirm", "auto-accept")]
        assert sweep(stale_after_ms=60_000, limit=10) == 0  # asked once


def test_the_channels_api_lists_and_sets_a_stores_channels(
    bridge: Accepting, caplog: pytest.LogCaptureFixture
) -> None:
    client = bridge.client
    path = "/api/v1/stores/S001/channels"
    listed = client.get(path, headers=READ)
    assert listed.status_code == 200
    assert listed.json() == {
        "store_id": "S001",
        "channels": [
            {"platform": NAME, "auto_accept": False, "source": "config", "authorization": STATIC},
            {
                "platform": testpay.NAME,
                "auto_accept": False,
                "source": "config",
                "authorization": STATIC,
            },
        ],
    }
    with caplog.at_level(logging.INFO, logger="waimai_bridge.web.channels"):
        put = client.put(f"{path}/{testpay.NAME}", json={"auto_accept": True}, headers=AUTH)
    assert (put.status_code, put.json()) == (
        200,
        {"platform": testpay.NAME, "auto_accept": True, "source": "set", "authorization": STATIC},
    )  # fmt: skip
    assert [r.getMessage() for r in caplog.records if r.name == "waimai_bridge.web.channels"] == [
        f"auto-accept of store S001 on {testpay.NAME} turned on by token-1"
    ]
    assert client.get(path, headers=AUTH).json()["channels"][1] == put.json()
    with bridge.bridge.database.transaction() as session:
        assert channels.auto_accepts(session, "S001", testpay.NAME, False) is True
        assert channels.auto_accepts(session, "S001", NAME, True) is True  # not set: the default
        assert channels.auto_accepts(session, "S001", NAME, False) is False
    off = client.put(f"{path}/{testpay.NAME}", json={"auto_accept": False}, headers=AUTH)
    assert off.json()["auto_accept"] is False
    assert client.get(path, headers=AUTH).json()["channels"][1]["auto_accept"] is False

    unknown = client.get("/api/v1/stores/S404/channels", headers=AUTH)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "no store 'S404' in the config"},
    )
    unbound = client.put(
        f"/api/v1/stores/S002/channels/{testpay.NAME}", json={"auto_accept": True}, headers=AUTH
    )
    assert (unbound.status_code, unbound.json()) == (
        404, {"error": f"store 'S002' is not bound to platform {testpay.NAME!r}"},
    )  # fmt: skip
    assert client.put(
        "/api/v1/stores/S404/channels/x", json={"auto_accept": True}, headers=AUTH
    ).status_code == 404  # fmt: skip

    read_only = client.put(f"{path}/{NAME}", json={"auto_accept": True}, headers=READ)
    assert read_only.status_code == 403
    for bad in ({}, {"auto_accept": "yes"}, {"auto_accept": 1}, {"auto_accept": True, "x": 1}):
        assert client.put(f"{path}/{NAME}", json=bad, headers=AUTH).status_code == 422, bad
    assert client.get(path, headers=AUTH).json()["channels"][0] == {
        "platform": NAME, "auto_accept": False, "source": "config", "authorization": STATIC,
    }  # fmt: skip

"""An action is judged on every event the bridge received, read by a worker or not.

A store agrees to a refund the moment the request shows on its screen; the request's push
may still be waiting in the inbox for its worker. On SQLite and PostgreSQL, with no worker
running: the pushes are received, some applied, and actions asked in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waimai_bridge_eleme import examples
from waimai_bridge_eleme.testing import push_body

from tests.test_actions import APP_ID, SECRET, SHOP, T0_S, config_text
from waimai_bridge.config import load_config
from waimai_bridge.models import Action, InboundRequest
from waimai_bridge.pipeline.actions import ActionRefused
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database


class Idle:
    """A bridge whose worker does nothing until told."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def receive(self, push_type: int, message: dict[str, Any]) -> None:
        body = push_body(push_type, message, app_id=APP_ID, shop_id=SHOP, secret=SECRET,
                         timestamp_ms=T0_S * 1000 + push_type)  # fmt: skip
        request = InboundRequest(
            method="POST", url="https://bridge.example.com/webhooks/eleme", kind=None, query=[],
            headers={"content-type": "application/json"}, body=body, received_at_ms=0,
        )  # fmt: skip
        parsed = self.bridge.registry.platform("eleme").parse_event(
            request, self.bridge.config.plugin_config("eleme")
        )
        assert parsed is not None
        write_pushes(self.bridge.pipeline, [(parsed.events, self.bridge.clock())])

    def apply(self) -> None:
        self.bridge.applier.process_shard(self.bridge.pipeline.shard_of("S001"))

    def ask(self, order: str, action: Action, key: str) -> Any:
        return self.bridge.actions.ask(
            platform="eleme", platform_order_id=order, action=action, reason="r", key=key
        )


@pytest.fixture
def idle(database: Database, tmp_path: Path) -> Iterator[Idle]:
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(database.url, "http://127.0.0.1:9/"), "utf-8")
    registry = PluginRegistry.discover(blocked=())
    bridge = Bridge(load_config(path, registry), registry)
    yield Idle(bridge)
    bridge.stop()


def test_a_refund_request_still_in_the_inbox_can_be_agreed_to(idle: Idle) -> None:
    idle.receive(10, examples.new_order("R1", SHOP))
    idle.receive(12, examples.status("R1", SHOP, "valid", T0_S + 1))
    idle.receive(18, examples.status("R1", SHOP, "settled", T0_S + 2))
    idle.apply()
    idle.receive(30, examples.refund("R1", SHOP, "applied", T0_S + 3, total_fen=3500))  # unread
    asked = idle.ask("R1", Action.AGREE_REFUND, "agree-1")
    assert asked.created
    again = idle.ask("R1", Action.AGREE_REFUND, "agree-2")  # one per request, read or not
    assert (again.created, again.action.id) == (False, asked.action.id)


def test_an_order_whose_cancellation_is_still_in_the_inbox_cannot_be_confirmed(
    idle: Idle,
) -> None:
    idle.receive(10, examples.new_order("C1", SHOP))
    idle.apply()
    idle.receive(14, examples.status("C1", SHOP, "invalid", T0_S + 1))  # unread
    with pytest.raises(ActionRefused) as refused:
        idle.ask("C1", Action.CONFIRM, "confirm-1")
    assert refused.value.status == 409
    assert "refunded" in refused.value.message

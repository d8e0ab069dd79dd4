"""An action asked while a worker stores its order's first push, on PostgreSQL (SQLite
serialises the two): each statement sees the latest commits, so the order may appear
between the bridge's two looks at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.pullpay import NAME
from tests.sample_plugin import PRICE
from tests.test_pulls import Pulling
from waimai_bridge.models import Action
from waimai_bridge.store import actions as action_store
from waimai_bridge.store.database import Database


def test_an_action_asked_while_its_first_push_is_applied_finds_the_order(
    postgres_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pulling = Pulling(postgres_database, tmp_path)
    try:
        pulling.deliver(pulling.body("c1", "R-1", "order.created", price=PRICE))
        looked = action_store.open_from_inbox

        def applied_meanwhile(session: Session, *arguments: Any) -> bool:
            pulling.apply()  # a worker commits the push between the bridge's two looks
            return looked(session, *arguments)

        monkeypatch.setattr(action_store, "open_from_inbox", applied_meanwhile)
        asked = pulling.bridge.actions.ask(
            platform=NAME, platform_order_id="R-1", action=Action.CONFIRM, reason=None,
            key="race-1",
        )  # fmt: skip
        assert asked.created
        assert asked.action.platform_order_id == "R-1"
    finally:
        pulling.bridge.stop()

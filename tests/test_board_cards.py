"""The board's cards read from the store: what a card shows of a discarded, a held and a
stored order (its state, rider, price and times), from rows written as the store keeps them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_anomaly_conditions import NOW, platform_order
from tests.test_settlement_edges import machine_in_shanghai as machine_in_shanghai  # the fixture
from waimai_bridge.action_rules import DEFAULT_ANSWERS
from waimai_bridge.models import Action, OrderState, RiderState
from waimai_bridge.store import board
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import PlatformOrder

PRICE = {"user_paid": 2600, "merchant_income": 1800}


def no_actions(platform: str) -> tuple[frozenset[Action], Any]:
    return frozenset(), DEFAULT_ANSWERS


def cards(database: Database, *rows: PlatformOrder) -> dict[str, board.Card]:
    """The cards of ``rows``, once stored, by platform order id."""
    with database.transaction() as session:
        session.add_all(rows)
    keys = [(row.platform, row.platform_order_id) for row in rows]
    with database.transaction() as session:
        found = board.cards_of(session, keys, no_actions)
    return {order_id: card for (_, order_id), card in found.items()}


@pytest.mark.usefixtures("machine_in_shanghai")  # times in UTC whatever the machine's zone
def test_a_card_shows_the_state_rider_and_price_of_what_the_store_holds(
    database: Database,
) -> None:
    stored = {
        "state": OrderState.DELIVERING.value, "rider_state": RiderState.DELIVERING.value,
        "price": {"user_paid": 2400, "merchant_income": 1700}, "updated_at_ms": NOW + 1_500,
    }  # fmt: skip
    found = cards(
        database,
        platform_order("DISCARDED", discarded=True, price=PRICE),
        platform_order("HELD", price=PRICE, created_at_ms=NOW, updated_at_ms=NOW + 250),
        platform_order("STORED", price=PRICE, order=stored, created_at_ms=NOW,
                       updated_at_ms=NOW + 500),
        platform_order("ODD", state_code=None, price={"user_paid": True, "merchant_income": "18"}),
    )  # fmt: skip
    shown = {
        order: (card["state"], card["rider_state"], card["user_paid"], card["merchant_income"])
        for order, card in found.items()
    }
    assert shown == {
        "DISCARDED": ("discarded", None, 2600, 1800),
        "HELD": ("new", None, 2600, 1800),
        "STORED": ("delivering", "delivering", 2400, 1700),  # the stored order's own price
        "ODD": ("new", None, None, None),  # figures that are not whole fen are not shown
    }
    assert {order: card["needs_action"] for order, card in found.items()} == {
        "DISCARDED": False, "HELD": True, "STORED": False, "ODD": True,
    }  # fmt: skip
    assert found["ODD"]["platform_state"] is None
    assert found["HELD"]["platform_state"] == {"code": 10, "name": "created"}
    assert (found["HELD"]["created_at"], found["HELD"]["updated_at"]) == (
        "2024-05-20T05:00:00.000+00:00", "2024-05-20T05:00:00.250+00:00",
    )  # fmt: skip
    assert found["STORED"]["updated_at"] == "2024-05-20T05:00:01.500+00:00"  # the later one

"""Which orders a board page reads and what each card lists with them: today's orders in the
board's zone, filtered by store, platform and state, newest first up to the limit; the lines,
open anomalies and recent actions of each, from rows written as the store keeps them."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from tests.test_anomaly_conditions import NOW, platform_order
from tests.test_board_cards import no_actions
from tests.test_store_mutants import outbound_action
from waimai_bridge.action_rules import DEFAULT_ANSWERS, declared_answers
from waimai_bridge.models import Action, OrderState, PlatformState
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import board
from waimai_bridge.store.actions import ActionStatus
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Anomaly, OrderEvent, OrderItem, PlatformOrder

HOUR_MS = 3_600_000
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
LA_MIDNIGHT = NOW - 22 * HOUR_MS
"""The start of ``NOW``'s day in Los Angeles (05:00 UTC is 22:00 PDT the day before); in
Shanghai, the board's default zone, that day starts 9 hours later, and in UTC 17 hours later."""


def created(order_id: str, at_ms: int, **row: Any) -> PlatformOrder:
    return platform_order(order_id, created_at_ms=at_ms, updated_at_ms=at_ms, **row)


def shown(database: Database, *rows: PlatformOrder, **query: Any) -> list[str]:
    """The platform order ids a page of cards shows, in its order, once ``rows`` are
    stored (one transaction each, in order)."""
    for row in rows:
        with database.transaction() as session:
            session.add(row)
    return page(database, **query)


def page(database: Database, *, now_ms: int = NOW, **query: Any) -> list[str]:
    with database.transaction() as session:
        found = board.cards(session, no_actions, now_ms=now_ms, **query)
    return [card["platform_order_id"] for card in found]


def test_a_page_holds_today_in_its_zone_from_midnight_on_newest_first(database: Database) -> None:
    ids = shown(
        database,
        created("YESTERDAY", LA_MIDNIGHT - 1),
        created("AT-MIDNIGHT", LA_MIDNIGHT),
        created("EVENING", NOW - 15 * HOUR_MS),  # before midnight in Shanghai and UTC
        created("TIE-FIRST", NOW - HOUR_MS),
        created("TIE-SECOND", NOW - HOUR_MS),  # written later: newer
        zone=LOS_ANGELES,
    )
    assert ids == ["TIE-SECOND", "TIE-FIRST", "EVENING", "AT-MIDNIGHT"]
    later = NOW + 1_234_567  # 20 minutes, 34.567 seconds past the hour: the same day
    assert page(database, zone=LOS_ANGELES, now_ms=later) == ids
    assert page(database) == ["TIE-SECOND", "TIE-FIRST"]  # Shanghai's day


def test_a_page_is_cut_to_its_limit_keeping_the_newest(database: Database) -> None:
    ids = shown(database, *(created(f"P-{n}", NOW - n * 1000) for n in range(3)), limit=2)
    assert ids == ["P-0", "P-1"]
    assert page(database, limit=0) == ["P-0"]  # at least one
    assert page(database) == ["P-0", "P-1", "P-2"]


def test_a_page_of_one_store_platform_or_state_holds_only_those(database: Database) -> None:
    today = NOW - HOUR_MS
    ids = shown(
        database,
        created("HELD", today),
        created("DISCARDED", today + 1, discarded=True),
        created("PAID", today + 2, order={}),
        created("PREPARING", today + 3, order={"state": OrderState.PREPARING.value}),
        created("ELSEWHERE", today + 4, store_id="S002"),
        created("OTHERPAY", today + 5, platform="otherpay"),
    )
    assert ids == ["OTHERPAY", "ELSEWHERE", "PREPARING", "PAID", "DISCARDED", "HELD"]
    assert page(database, state=board.NEW) == ["OTHERPAY", "ELSEWHERE", "HELD"]
    assert page(database, state=board.DISCARDED) == ["DISCARDED"]
    assert page(database, state=OrderState.PREPARING.value) == ["PREPARING"]
    assert page(database, platform="otherpay") == ["OTHERPAY"]
    assert page(database, platform="testpay", store_id="S002") == ["ELSEWHERE"]


def card_of(database: Database, order_id: str) -> board.Card:
    with database.transaction() as session:
        found = board.card(session, "testpay", order_id, no_actions)
    assert found is not None
    return found


def test_a_card_lists_its_lines_in_line_order_and_a_held_order_s_from_its_price(
    database: Database,
) -> None:
    stored = platform_order("STORED", order={})
    assert stored.order is not None
    stored.order.items = [  # written last line first
        OrderItem(line=line, name=f"line {line}", quantity=line, unit_original_fen=100,
                  unit_paid_fen=100, unmapped=line == 1)
        for line in (2, 1)
    ]  # fmt: skip
    lines = [{"name": "粥", "quantity": 2}, {"quantity": 1}, "not a line"]
    price = {"user_paid": 2600, "merchant_income": 1800, "items": lines}
    held = platform_order("HELD", price=price)
    with database.transaction() as session:
        session.add_all([stored, held])
    assert card_of(database, "STORED")["items"] == [
        {"name": "line 1", "quantity": 1, "unmapped": True},
        {"name": "line 2", "quantity": 2, "unmapped": False},
    ]
    assert card_of(database, "HELD")["items"] == [
        {"name": "粥", "quantity": 2, "unmapped": False},
        {"name": "", "quantity": 1, "unmapped": False},  # a line without a name
    ]


def test_a_card_lists_its_open_anomalies_in_the_order_they_opened(database: Database) -> None:
    order = platform_order("ANOMALOUS")
    with database.transaction() as session:
        session.add(order)
        session.flush()
        session.add_all(
            Anomaly(platform_order_pk=order.id, kind=kind, detail=detail, created_at_ms=NOW,
                    resolved_at_ms=resolved)
            for kind, detail, resolved in [
                (AnomalyRule.UNMAPPED_SKU, "SKU-9", None),
                (AnomalyRule.NOT_ACCEPTED, "waiting", None),
                (AnomalyRule.NO_RIDER, "no rider", NOW),
            ]
        )  # fmt: skip
    assert card_of(database, "ANOMALOUS")["anomalies"] == [
        {"rule": "unmapped_sku", "detail": "SKU-9"},
        {"rule": "not_accepted", "detail": "waiting"},
    ]


def test_a_card_lists_the_newest_actions_of_its_own_order_newest_first(
    database: Database,
) -> None:
    orders = ["BUSY", "QUIET"]
    with database.transaction() as session:
        session.add_all(platform_order(order_id) for order_id in orders)
    for n, order_id in enumerate(["BUSY"] * 6 + ["QUIET"] * 3 + ["BUSY"]):
        with database.transaction() as session:
            session.add(
                outbound_action(
                    n,
                    ActionStatus.FAILED,
                    platform="testpay",
                    platform_order_id=order_id,
                    result_message=f"no {n}",
                )
            )
    with database.transaction() as session:
        found = board.cards_of(session, [("testpay", order_id) for order_id in orders], no_actions)
    recent = {key[1]: [shown["message"] for shown in card["recent_actions"]]
              for key, card in found.items()}  # fmt: skip
    assert recent == {
        "BUSY": ["no 9", "no 5", "no 4", "no 3", "no 2"],
        "QUIET": ["no 8", "no 7", "no 6"],
    }


def test_a_card_offers_the_answers_its_platform_declares_to_a_pending_request(
    database: Database,
) -> None:
    asked = platform_order("ASKED", order={})
    with database.transaction() as session:
        session.add(asked)
        session.flush()
        session.add_all(
            OrderEvent(
                platform_order_pk=asked.id, platform="testpay", idempotency_key=f"ASKED-{n}",
                native_code="test", state_code=int(state), kitchen_step=None, partial=False,
                refund_amount_fen=None, refunded_items=[], reason=None,
                platform_time_ms=NOW - 60_000 + n, received_at_ms=NOW, payload={},
            )
            for n, state in enumerate([PlatformState.ACCEPTED, PlatformState.CANCEL_REQUESTED])
        )  # fmt: skip
    answering = frozenset({Action.AGREE_CANCEL, Action.AGREE_REFUND})
    declared = declared_answers({Action.AGREE_REFUND: [PlatformState.CANCEL_REQUESTED]})
    with database.transaction() as session:
        by_default = board.card(session, "testpay", "ASKED", lambda _: (answering, DEFAULT_ANSWERS))
        as_declared = board.card(session, "testpay", "ASKED", lambda _: (answering, declared))
    assert by_default is not None
    assert as_declared is not None
    assert (by_default["request"], by_default["actions"]) == ("cancel", ["agree_cancel"])
    assert as_declared["actions"] == ["agree_cancel", "agree_refund"]

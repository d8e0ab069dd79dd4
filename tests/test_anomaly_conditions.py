"""Each anomaly rule's condition, read against rows written as the store keeps them: one
order that meets the condition beside orders that each miss it by one clause, so that every
clause of a condition is seen to count."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from waimai_bridge.models import OrderState, PlatformState, RiderState
from waimai_bridge.settings import AnomalyRule, AnomalySettings
from waimai_bridge.store.anomaly_rules import MINUTE_MS, RULES, Window
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Order, OrderItem, PlatformOrder

NOW = 1_716_181_200_000
SETTINGS = AnomalySettings()
RULE = {rule.name: rule for rule in RULES}


def window(**overrides: Any) -> Window:
    """A round at ``NOW`` with the default thresholds, riders sent on ``testpay``."""
    values: dict[str, Any] = {
        "now_ms": NOW,
        "settings": SETTINGS,
        "rider_platforms": frozenset({"testpay"}),
        "request_minutes": {},
    }
    return Window(**(values | overrides))


def ago(minutes: float) -> int:
    return NOW - int(minutes * MINUTE_MS)


def platform_order(
    order_id: str, *, order: dict[str, Any] | None = None, lines: tuple[bool, ...] = (), **row: Any
) -> PlatformOrder:
    """A platform order (created 2 hours ago, not accepted), with its stored order and
    lines (each line unmapped or not) when ``order`` is given."""
    values: dict[str, Any] = {
        "platform": "testpay",
        "platform_order_id": order_id,
        "store_id": "S001",
        "state_code": int(PlatformState.CREATED),
        "order_state": None,
        "price": None,
        "hold_started_at_ms": None,
        "discarded": False,
        "created_at_ms": ago(120),
        "updated_at_ms": ago(120),
    }
    placed = PlatformOrder(**(values | row))
    if order is not None:
        stored = {
            "platform": placed.platform,
            "platform_order_id": order_id,
            "store_id": placed.store_id,
            "state": OrderState.PAID.value,
            "rider_state": None,
            "refunded_amount_fen": 0,
            "version": 1,
            "created_at_ms": placed.created_at_ms,
            "updated_at_ms": placed.updated_at_ms,
        }
        placed.order = Order(**(stored | order))
        placed.order.items = [
            OrderItem(
                line=line,
                name=f"line {line}",
                quantity=1,
                unit_original_fen=100,
                unit_paid_fen=100,
                unmapped=unmapped,
            )
            for line, unmapped in enumerate(lines, 1)
        ]
    return placed


def holding(database: Database, rule: AnomalyRule, at: Window, *rows: PlatformOrder) -> set[str]:
    """The platform orders among ``rows`` that ``rule``'s condition holds for."""
    with database.transaction() as session:
        session.add_all(rows)
        session.flush()
        found = session.scalars(
            select(PlatformOrder.platform_order_id)
            .outerjoin(Order, Order.id == PlatformOrder.order_id)
            .where(RULE[rule].holds(at))
        )
        return set(found)


def test_not_accepted_holds_for_a_new_order_past_its_minutes_that_nothing_took_up(
    database: Database,
) -> None:
    limit = SETTINGS.not_accepted_minutes
    assert holding(
        database, AnomalyRule.NOT_ACCEPTED, window(),
        platform_order("late", created_at_ms=ago(limit) - 1),
        platform_order("on-the-minute", created_at_ms=ago(limit)),
        platform_order("stored", order={}, created_at_ms=ago(limit) - 1),
        platform_order("discarded", discarded=True),
        platform_order("held", hold_started_at_ms=ago(limit)),
        platform_order("cancelled", state_code=int(PlatformState.CANCELLED)),
    ) == {"late"}  # fmt: skip


def test_no_rider_holds_for_an_order_of_a_rider_platform_waiting_past_its_minutes(
    database: Database,
) -> None:
    limit = SETTINGS.no_rider_minutes
    waited: dict[str, Any] = {"hold_started_at_ms": ago(limit) - 1}
    assert holding(
        database, AnomalyRule.NO_RIDER, window(),
        platform_order("waiting", order={}, **waited),
        platform_order("ready", order={"state": OrderState.READY.value}, **waited),
        platform_order("on-the-minute", order={}, hold_started_at_ms=ago(limit)),
        platform_order("rider", order={"rider_state": RiderState.AT_STORE.value}, **waited),
        platform_order("delivering", order={"state": OrderState.DELIVERING.value}, **waited),
        platform_order("elsewhere", order={}, platform="norider", **waited),
    ) == {"waiting", "ready"}  # fmt: skip
    no_riders = window(rider_platforms=frozenset())
    assert holding(database, AnomalyRule.NO_RIDER, no_riders) == set()


def test_rider_at_store_holds_for_an_open_order_whose_rider_waits_past_its_minutes(
    database: Database,
) -> None:
    limit = SETTINGS.rider_at_store_minutes

    def rider(since_ms: int, where: RiderState = RiderState.AT_STORE, **order: Any) -> Any:
        return {"rider_state": where.value, "updated_at_ms": since_ms} | order

    assert holding(
        database, AnomalyRule.RIDER_AT_STORE, window(),
        platform_order("waits", order=rider(ago(limit) - 1)),
        platform_order("on-the-minute", order=rider(ago(limit))),
        platform_order("on-its-way", order=rider(ago(limit) - 1, RiderState.DELIVERING)),
        platform_order("done", order=rider(ago(limit) - 1, state=OrderState.COMPLETED.value)),
    ) == {"waits"}  # fmt: skip


def test_request_unanswered_waits_each_platforms_own_minutes_or_the_default(
    database: Database,
) -> None:
    default = SETTINGS.request_unanswered_minutes
    asked: dict[str, Any] = {"order_state": "cancel_requested"}
    at = window(request_minutes={"quick": 2.0})
    assert holding(
        database, AnomalyRule.REQUEST_UNANSWERED, at,
        platform_order("waits", updated_at_ms=ago(default) - 1, **asked),
        platform_order("on-the-minute", updated_at_ms=ago(default), **asked),
        platform_order("quick", platform="quick", updated_at_ms=ago(2) - 1, **asked),
        platform_order("quick-in-time", platform="quick", updated_at_ms=ago(2), **asked),
        platform_order("stored", order={}, updated_at_ms=ago(default) - 1, **asked),
        platform_order("finished", order={"state": OrderState.CANCELLED.value},
                       updated_at_ms=ago(default) - 1, **asked),
        platform_order("discarded", discarded=True, updated_at_ms=ago(default) - 1, **asked),
        platform_order("no-request", updated_at_ms=ago(default) - 1),
    ) == {"waits", "quick", "stored"}  # fmt: skip


def test_not_completed_holds_for_an_open_order_older_than_its_hours(database: Database) -> None:
    limit = SETTINGS.not_completed_hours * 60
    assert holding(
        database, AnomalyRule.NOT_COMPLETED, window(),
        platform_order("old", order={}, created_at_ms=ago(limit) - 1),
        platform_order("on-the-hour", order={}, created_at_ms=ago(limit)),
        platform_order("finished", order={"state": OrderState.REFUNDED.value},
                       created_at_ms=ago(limit) - 1),
        platform_order("never-stored", created_at_ms=ago(limit) - 1),
    ) == {"old"}  # fmt: skip


def test_an_unmapped_line_holds_for_the_order_that_has_one_and_no_other(
    database: Database,
) -> None:
    assert holding(
        database, AnomalyRule.UNMAPPED_SKU, window(),
        platform_order("unmapped", order={}, lines=(False, True)),
        platform_order("mapped", order={}, lines=(False, False)),
        platform_order("no-lines", order={}),
    ) == {"unmapped"}  # fmt: skip


@pytest.mark.parametrize(
    "rule",
    [AnomalyRule.TOTAL_MISMATCH, AnomalyRule.INCOME_MISMATCH, AnomalyRule.PRICE_UNREADABLE,
     AnomalyRule.LINES_NOT_STORED],
)  # fmt: skip
def test_an_anomaly_opened_as_the_order_is_stored_holds_while_the_order_is_open(
    database: Database, rule: AnomalyRule
) -> None:
    assert holding(
        database, rule, window(),
        platform_order("open", order={"state": OrderState.DELIVERING.value}),
        platform_order("done", order={"state": OrderState.COMPLETED.value}),
    ) == {"open"}  # fmt: skip


def test_a_channels_anomaly_holds_for_no_order(database: Database) -> None:
    assert (
        holding(
            database, AnomalyRule.CHANNEL_UNAUTHORIZED, window(), platform_order("any", order={})
        )
        == set()
    )

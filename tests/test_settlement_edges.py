"""The settlement report's edges: the window it reads, progress, row order and odd figures.

Orders are written straight into the tables (as :func:`tests.test_anomaly_conditions.
platform_order` builds them), so each case places an order on the exact millisecond it needs.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.test_anomaly_conditions import platform_order
from waimai_bridge.models import OrderState
from waimai_bridge.store import settlement
from waimai_bridge.store.database import Database
from waimai_bridge.store.settlement import Sums, net_income_of, order_sums
from waimai_bridge.store.tables import PlatformOrder

DAY = date(2024, 5, 20)
NOON_MS = int(datetime(2024, 5, 20, 4, tzinfo=UTC).timestamp() * 1000)
"""Noon of :data:`DAY` in Shanghai (the default zone)."""
PRICE = {"user_paid": 2600, "commission": 200, "merchant_income": 1800}
EASTMOST, WESTMOST = "Pacific/Kiritimati", "Etc/GMT+12"
"""The zones furthest ahead of UTC (+14) and behind it (-12)."""


def stored(
    name: str, at_ms: int, *, store: str = "S001", platform: str = "testpay", **order: Any
) -> PlatformOrder:
    """A platform order first seen at ``at_ms`` and its stored order: paid 26.00, earning
    18.00 (the income kept with it) unless ``order`` says otherwise."""
    values: dict[str, Any] = {
        "price": PRICE, "state": OrderState.COMPLETED.value, "net_income_fen": 1800,
        "income_rule": "stated",
    }  # fmt: skip
    return platform_order(
        name, order=values | order, store_id=store, platform=platform, created_at_ms=at_ms,
        updated_at_ms=at_ms,
    )  # fmt: skip


def settle(
    database: Database, *rows: PlatformOrder, zones: dict[str, str] | None = None
) -> tuple[settlement.Report, list[int]]:
    """``rows`` stored, then the report of :data:`DAY` and what it told its progress."""
    with database.transaction() as session:
        session.add_all(rows)
    read: list[int] = []
    with database.reading() as session:
        found = settlement.report(
            session, from_day=DAY, to_day=DAY, zones=zones or {}, progress=read.append
        )
    return found, read


def keys(found: settlement.Report) -> list[tuple[str, str, date, int]]:
    return [(row.store_id, row.platform, row.day, row.sums.orders) for row in found.rows]


def test_progress_is_told_each_thousand_orders_read_and_the_count_at_the_end(
    database: Database,
) -> None:
    many = [stored(f"P-{n}", NOON_MS + n) for n in range(settlement.BATCH + 1)]
    found, read = settle(database, *many)
    assert read == [settlement.BATCH, settlement.BATCH + 1]
    assert found.totals.orders == settlement.BATCH + 1
    assert found.totals.net_income == 1800 * (settlement.BATCH + 1)
    with database.reading() as session:  # no one to tell: the same report
        quiet = settlement.report(session, from_day=DAY, to_day=DAY, zones={})
    assert quiet == found


def test_progress_of_a_few_orders_is_told_once_with_their_count(database: Database) -> None:
    _, read = settle(database, stored("a", NOON_MS), stored("b", NOON_MS + 1))
    assert read == [2]


def test_a_day_is_read_from_its_start_furthest_east_to_its_end_furthest_west(
    database: Database,
) -> None:
    start = int(datetime(2024, 5, 19, 10, tzinfo=UTC).timestamp() * 1000)  # 20th, 00:00 at +14
    end = int(datetime(2024, 5, 21, 14, tzinfo=UTC).timestamp() * 1000)  # 21st, 02:00 at -12
    last = int(datetime(2024, 5, 21, 12, tzinfo=UTC).timestamp() * 1000) - 1  # 20th, 23:59 at -12
    found, read = settle(
        database,
        stored("before", start - 1, store="east"),
        stored("first", start, store="east"),
        stored("last", last, store="west"),
        stored("next-day", end - 1, store="west"),
        stored("after", end, store="west"),
        zones={"east": EASTMOST, "west": WESTMOST},
    )  # fmt: skip
    assert keys(found) == [("east", "testpay", DAY, 1), ("west", "testpay", DAY, 1)]
    assert read == [3]  # nothing outside the window is read


def test_rows_of_a_day_are_by_store_then_platform_whatever_order_they_are_read_in(
    database: Database,
) -> None:
    found, _ = settle(
        database,
        stored("first", NOON_MS, store="S002"),
        stored("second", NOON_MS + 1, store="S001"),
        stored("third", NOON_MS + 2, store="S001", platform="otherpay"),
    )  # fmt: skip
    assert keys(found) == [
        ("S001", "otherpay", DAY, 1), ("S001", "testpay", DAY, 1), ("S002", "testpay", DAY, 1),
    ]  # fmt: skip


def test_an_order_kept_before_net_income_was_and_refunded_in_full_earns_nothing(
    database: Database,
) -> None:
    found, _ = settle(
        database,
        stored(
            "refunded", NOON_MS, state=OrderState.REFUNDED.value, refunded_amount_fen=500,
            net_income_fen=None, income_rule=None,
        ),
    )  # fmt: skip
    assert found.totals.merchant_income == 1800
    assert found.totals.refunded == 500
    assert found.totals.net_income == 0


def test_the_report_streams_the_orders_a_batch_at_a_time(database: Database) -> None:
    options: list[dict[str, Any]] = []

    def seen(*args: Any) -> None:
        statement, context = args[2], args[4]
        if "platform_orders.created_at_ms" in statement:
            options.append(dict(context.execution_options))

    event.listen(database.reading_engine, "before_cursor_execute", seen)
    try:
        settle(database, stored("a", NOON_MS))
    finally:
        event.remove(database.reading_engine, "before_cursor_execute", seen)
    [used] = options
    assert used["stream_results"] is True
    assert used["max_row_buffer"] == settlement.BATCH


def test_a_range_that_ends_before_it_starts_is_refused_naming_both_days() -> None:
    with pytest.raises(ValueError, match=r"starts \(2024-05-21\) after it ends \(2024-05-20\)"):
        settlement.report(Session(), from_day=date(2024, 5, 21), to_day=DAY, zones={})


@pytest.fixture
def machine_in_shanghai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is Asia/Shanghai for the test."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    clock.tzset()
    yield
    monkeypatch.undo()
    clock.tzset()


@pytest.mark.usefixtures("machine_in_shanghai")
def test_the_window_is_the_days_widened_by_fourteen_hours_whatever_the_machine_s_zone() -> None:
    start, end = settlement.window_ms(DAY, DAY + timedelta(days=1))
    assert start == int(datetime(2024, 5, 19, 10, tzinfo=UTC).timestamp() * 1000)
    assert end == int(datetime(2024, 5, 22, 14, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("figure", [True, 18.5, "1800"])
def test_an_income_that_is_not_whole_fen_counts_as_unstated(figure: object) -> None:
    price = PRICE | {"merchant_income": figure}
    assert net_income_of(price, 0, OrderState.COMPLETED.value, None, None) is None
    sums = order_sums(price, 0, OrderState.COMPLETED.value, None, None)
    assert sums == Sums(orders=1, user_paid=2600, commission=200)


def test_an_order_s_figures_count_a_mismatch_only_when_told_of_one() -> None:
    clean = order_sums(PRICE, 0, OrderState.COMPLETED.value, 1800, "stated")
    assert clean == Sums(orders=1, user_paid=2600, commission=200, merchant_income=1800,
                         net_income=1800)  # fmt: skip
    flagged = order_sums(PRICE, 0, OrderState.COMPLETED.value, 1800, "stated", mismatch=True)
    assert flagged.mismatches == 1

"""The settlement report (waimai_bridge/store/settlement.py) ties out to the stored orders:
random sets of orders through the real pipeline, each counted once, on the day it was
created in its store's zone; and the CLI's three formats and the API say the same."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.conftest import clear
from tests.test_hold import HOLD_MS, Worker
from tests.test_pipeline import AUTH, config_text, registry
from waimai_bridge.cli import cli
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import settlement
from waimai_bridge.store.database import Database
from waimai_bridge.store.settlement import COLUMNS, Sums
from waimai_bridge.store.tables import Order, PlatformOrder
from waimai_bridge.web.app import create_app

ZONES = {"S001": "Asia/Shanghai", "S002": "America/Los_Angeles"}
SHOPS = {"S001": "100001", "S002": "100002"}
FIRST_DAY = date(2024, 5, 20)
DAYS = 4
MINUTE_MS = 60_000

STORIES = (
    "completed", "partial", "partial_twice", "partial_then_full", "full", "cancel_in_hold",
    "cancel_after_hold",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """One order: where and when it is created, its price and what happens to it."""

    store: str
    day: int
    """Days after :data:`FIRST_DAY` of the local midnight it is placed near."""
    minutes: int
    """Minutes from that midnight (negative: the evening before)."""
    quantity: int
    unit: int
    platform_discount: int
    merchant_discount: int
    user_paid: int
    commission: int | None
    merchant_income: int | None
    mismatch: bool
    """The stated total disagrees with the lines."""
    story: str
    refunds: tuple[int, int]
    """The partial refunds' amounts (fen)."""

    @property
    def created_ms(self) -> int:
        midnight = datetime.combine(
            FIRST_DAY + timedelta(days=self.day), time(), ZoneInfo(ZONES[self.store])
        )
        return int(midnight.timestamp() * 1000) + self.minutes * MINUTE_MS + 7

    @property
    def local_day(self) -> date:
        zone = ZoneInfo(ZONES[self.store])
        return datetime.fromtimestamp(self.created_ms / 1000, tz=zone).date()

    def price(self) -> dict[str, Any]:
        lines = self.quantity * self.unit
        return {
            "items": [{
                "sku_code": "SKU-1", "platform_sku_id": "1", "name": "rice",
                "quantity": self.quantity, "unit_original": self.unit, "unit_paid": self.unit,
            }],
            "original_amount": lines + 100 + 500 + int(self.mismatch),
            "packaging_fee": 100, "delivery_fee": 500,
            "merchant_discount": self.merchant_discount,
            "platform_discount": self.platform_discount, "user_paid": self.user_paid,
            "commission": self.commission, "merchant_income": self.merchant_income,
        }  # fmt: skip


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    user_paid = draw(st.integers(0, 50_000))
    refund = st.integers(1, max(1, user_paid))
    return Plan(
        store=draw(st.sampled_from(sorted(ZONES))),
        day=draw(st.integers(0, DAYS - 1)),
        minutes=draw(st.sampled_from([-600, -61, -1, 0, 1, 59, 600])),
        quantity=draw(st.integers(1, 5)),
        unit=draw(st.integers(0, 5_000)),
        platform_discount=draw(st.integers(0, 1_000)),
        merchant_discount=draw(st.integers(0, 1_000)),
        user_paid=user_paid,
        commission=draw(st.none() | st.integers(0, 2_000)),
        merchant_income=draw(st.none() | st.integers(-500, user_paid)),
        mismatch=draw(st.booleans()),
        story=draw(st.sampled_from(STORIES)),
        refunds=(draw(refund), draw(refund)),
    )


@contextmanager
def zoned(database: Database, tmp_path: Path) -> Iterator[Worker]:
    """A worker's bridge (see tests/test_hold.py) whose store S002 is in Los Angeles."""
    path = tmp_path / "bridge.toml"
    text = config_text(database.url, hold=HOLD_MS // 1000).replace(
        "[stores.S002]\n", f'[stores.S002]\ntimezone = "{ZONES["S002"]}"\n'
    )
    path.write_text(text, "utf-8")
    plugins = registry()
    holder: list[Worker] = []
    bridge = Bridge(load_config(path, plugins), plugins, clock=lambda: holder[0].now)
    holder.append(Worker(bridge))
    try:
        yield holder[0]
    finally:
        bridge.stop()


def run(worker: Worker, ordered: Sequence[Plan]) -> None:
    """Each plan's order through the pipeline: created, held, then its story."""
    for n, plan in enumerate(ordered):
        order, store, at = f"P-{n}", plan.store, plan.created_ms

        def push(code: str, after_ms: int, key: str | None = None, **extra: Any) -> None:
            worker.receive(order, code, at + after_ms, key, shop=SHOPS[store], **extra)  # noqa: B023

        def apply() -> None:
            pipeline = worker.bridge.pipeline
            worker.bridge.applier.process_shard(pipeline.shard_of(store))  # noqa: B023

        push("order.created", 0, price=plan.price())
        push("order.accepted", 1)
        if plan.story == "cancel_in_hold":
            push("order.cancelled", 2)
        apply()
        worker.now += HOLD_MS + 1
        worker.bridge.holds.release_holds([["testpay", order, store]])
        if plan.story in ("cancel_in_hold", "completed"):
            continue
        if plan.story == "cancel_after_hold":
            push("order.cancelled", HOLD_MS + 10)
            apply()
            continue
        push("order.completed", HOLD_MS + 10)
        push("refund.requested", HOLD_MS + 20)
        if plan.story == "full":
            push("refund.agreed", HOLD_MS + 30)
        else:
            push("refund.agreed", HOLD_MS + 30, partial=True, refund_fen=plan.refunds[0])
        apply()
        if plan.story in ("partial_twice", "partial_then_full"):
            push("refund.requested", HOLD_MS + 40, key=f"{order}:second")
            second = {"partial": True, "refund_fen": plan.refunds[1]}
            extra = second if plan.story == "partial_twice" else {}
            push("refund.agreed", HOLD_MS + 50, key=f"{order}:second-agreed", **extra)
            apply()


Key = tuple[str, str, date]


def expected(worker: Worker, ordered: Sequence[Plan], from_day: date, to_day: date,
             store: str | None) -> dict[Key, Sums]:  # fmt: skip
    """The sums over the stored orders, each on the local day the test placed it."""
    with worker.bridge.database.transaction() as session:
        stored = {order.platform_order_id: order for order in session.scalars(select(Order))}
        discarded = set(
            session.scalars(select(PlatformOrder.platform_order_id).where(PlatformOrder.discarded))
        )
    cells: dict[Key, Sums] = {}
    for n, plan in enumerate(ordered):
        order = stored.get(f"P-{n}")
        if plan.story == "cancel_in_hold":
            assert order is None
            assert f"P-{n}" in discarded
            continue
        assert order is not None
        assert order.income_rule is not None
        if not from_day <= plan.local_day <= to_day or store not in (None, plan.store):
            continue
        price = order.price or {}
        sums = cells.setdefault((plan.store, "testpay", plan.local_day), Sums())
        sums.orders += 1
        for column in ("user_paid", "platform_discount", "merchant_discount", "commission",
                       "merchant_income"):  # fmt: skip
            setattr(sums, column, getattr(sums, column) + (price[column] or 0))
        sums.refunded += order.refunded_amount_fen
        sums.net_income += order.net_income_fen or 0
        sums.mismatches += int(plan.mismatch)
    return cells


def check(worker: Worker, ordered: Sequence[Plan], first: int, last: int,
          store: str | None) -> settlement.Report:  # fmt: skip
    """The report of the days ``first``…``last`` agrees with the stored orders."""
    from_day, to_day = FIRST_DAY + timedelta(days=first), FIRST_DAY + timedelta(days=last)
    read: list[int] = []
    with worker.bridge.database.transaction() as session:
        found = settlement.report(
            session, from_day=from_day, to_day=to_day, zones=ZONES, store_id=store,
            progress=read.append,
        )  # fmt: skip
    rows = {(row.store_id, row.platform, row.day): row.sums for row in found.rows}
    assert rows == expected(worker, ordered, from_day, to_day, store)
    keys = [(row.day, row.store_id, row.platform) for row in found.rows]
    assert keys == sorted(keys)
    for row in found.rows:
        assert row.sums.net_income <= row.sums.merchant_income
    totals = Sums()
    for sums in rows.values():
        totals.add(sums)
    assert found.totals == totals
    assert read
    assert read[-1] >= totals.orders
    return found


DAY_RANGES = st.integers(0, DAYS - 1).flatmap(
    lambda first: st.tuples(st.just(first), st.integers(first, DAYS - 1))
)


def test_the_report_s_sums_are_the_stored_orders_sums_each_on_its_local_day(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'settlement.sqlite3'}")
    database.migrate()
    with zoned(database, tmp_path) as worker:

        @given(
            ordered=st.lists(plans(), min_size=1, max_size=8), days=DAY_RANGES,
            store=st.sampled_from([None, "S001", "S002"]),
        )  # fmt: skip
        @settings(max_examples=15, deadline=None, database=None)
        def ties_out(ordered: list[Plan], days: tuple[int, int], store: str | None) -> None:
            clear(database)
            worker.forget_messages()
            run(worker, ordered)
            check(worker, ordered, *days, store)

        ties_out()
    database.dispose()


def fixed(story: str, store: str, day: int, minutes: int, *, mismatch: bool = False) -> Plan:
    return Plan(
        store=store, day=day, minutes=minutes, quantity=2, unit=1200, platform_discount=100,
        merchant_discount=300, user_paid=2600, commission=200, merchant_income=1800,
        mismatch=mismatch, story=story, refunds=(500, 300),
    )  # fmt: skip


FIXED = [
    fixed("completed", "S001", 1, -1),  # 23:59 in Shanghai: the day before
    fixed("partial", "S001", 1, 0, mismatch=True),
    fixed("partial_then_full", "S002", 1, -1),  # 23:59 in Los Angeles
    fixed("cancel_in_hold", "S002", 1, 1),
    fixed("partial_twice", "S002", 1, 1),
    fixed("cancel_after_hold", "S002", 2, 0),
]


def test_a_fixed_case_on_each_database(database: Database, tmp_path: Path) -> None:
    with zoned(database, tmp_path) as worker:
        run(worker, FIXED)
        found = check(worker, FIXED, 0, DAYS - 1, None)
    assert [(row.store_id, row.day.day, row.sums.orders) for row in found.rows] == [
        ("S001", 20, 1), ("S002", 20, 1), ("S001", 21, 1), ("S002", 21, 1), ("S002", 22, 1),
    ]  # fmt: skip
    assert found.totals.orders == 5
    assert found.totals.mismatches == 1
    assert found.totals.net_income == 1800 + 1454 + 0 + 1800 - 554 + 0
    with database.reading() as session:  # as the API reads it, streamed
        read = settlement.report(
            session, from_day=FIRST_DAY, to_day=FIRST_DAY + timedelta(days=DAYS - 1), zones=ZONES
        )
    assert read == found
    with database.transaction() as session:  # as orders stored before net income was kept
        session.execute(update(Order).values(net_income_fen=None, income_rule=None))
        again = settlement.report(
            session, from_day=FIRST_DAY, to_day=FIRST_DAY + timedelta(days=DAYS - 1), zones=ZONES
        )
    assert again == found
    with database.transaction() as session:  # a figure the platform stated wins
        session.execute(update(Order).values(net_income_fen=7, income_rule="stated"))
        stated = settlement.report(session, from_day=FIRST_DAY, to_day=FIRST_DAY, zones=ZONES)
    assert stated.totals.net_income == 7 * stated.totals.orders


@pytest.fixture
def reported(tmp_path: Path) -> Iterator[tuple[Worker, Path]]:
    """The fixed case on SQLite, and a config that reads its database with S002's zone."""
    database = Database(f"sqlite:///{tmp_path / 'settlement.sqlite3'}")
    database.migrate()
    config = tmp_path / "reader.toml"
    config.write_text(
        f'[bridge]\ndatabase_url = "{database.url}"\n\n'
        f'[stores.S002]\ntimezone = "{ZONES["S002"]}"\n', "utf-8",
    )  # fmt: skip
    with zoned(database, tmp_path) as worker:
        run(worker, FIXED)
        yield worker, config
    database.dispose()


def report_json(worker: Worker) -> dict[str, Any]:
    with worker.bridge.database.transaction() as session:
        return settlement.report(
            session, from_day=FIRST_DAY, to_day=FIRST_DAY + timedelta(days=DAYS - 1),
            zones=ZONES,
        ).as_json()  # fmt: skip


def settle(config: Path, *arguments: str) -> Any:
    days = ["--from", FIRST_DAY.isoformat(), "--to", (FIRST_DAY + timedelta(days=3)).isoformat()]
    return CliRunner().invoke(cli, ["--config", str(config), "settlement", *days, *arguments])


def test_the_cli_in_json_csv_and_a_table(reported: tuple[Worker, Path]) -> None:
    worker, config = reported
    wanted = report_json(worker)
    as_json = settle(config, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == wanted
    assert [row["day"] for row in wanted["rows"]][:2] == ["2024-05-20", "2024-05-20"]
    assert set(wanted["totals"]) == set(COLUMNS)

    as_csv = settle(config, "--format", "csv", "--store", "S002")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    s002 = [row for row in wanted["rows"] if row["store_id"] == "S002"]
    assert rows == [{key: str(value) for key, value in row.items()} for row in s002]

    table = settle(config)
    assert table.exit_code == 0, table.output
    assert "18.00" in table.stdout  # an order's income in yuan
    assert f"{wanted['totals']['net_income'] // 100:,}." in table.stdout
    assert "all" in table.stdout


def test_the_cli_refuses_a_range_that_ends_before_it_starts(tmp_path: Path) -> None:
    config = tmp_path / "reader.toml"
    config.write_text(f'[bridge]\ndatabase_url = "sqlite:///{tmp_path / "x.db"}"\n', "utf-8")
    refused = CliRunner().invoke(
        cli, ["--config", str(config), "settlement", "--from", "2024-05-21", "--to", "2024-05-20"]
    )
    assert refused.exit_code == 2
    assert "--from 2024-05-21 is after --to 2024-05-20" in refused.output
    bad = CliRunner().invoke(
        cli, ["--config", str(config), "settlement", "--from", "May 1", "--to", "2024-05-20"]
    )
    assert bad.exit_code == 2
    assert "is not a day" in bad.output


def test_the_api_says_what_the_report_says(reported: tuple[Worker, Path]) -> None:
    worker, _ = reported
    wanted = report_json(worker)
    last = (FIRST_DAY + timedelta(days=DAYS - 1)).isoformat()
    with TestClient(create_app(worker.bridge, run_worker=False)) as client:
        path = "/api/v1/settlements"
        answer = client.get(path, params={"from": FIRST_DAY.isoformat(), "to": last},
                            headers=AUTH)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json() == wanted
        one = client.get(
            path, params={"from": FIRST_DAY.isoformat(), "to": last, "store_id": "S001",
                          "platform": "testpay"}, headers=AUTH,
        )  # fmt: skip
        assert one.json()["rows"] == [r for r in wanted["rows"] if r["store_id"] == "S001"]
        none = client.get(path, params={"from": "2024-05-20", "to": last, "platform": "x"},
                          headers=AUTH)  # fmt: skip
        assert none.json() == {"rows": [], "totals": dict.fromkeys(COLUMNS, 0)}
        long = client.get(path, params={"from": "2024-01-01", "to": "2025-01-01"}, headers=AUTH)
        assert long.status_code == 400
        assert "366 days" in long.text
        year = client.get(path, params={"from": "2024-01-01", "to": "2024-12-31"}, headers=AUTH)
        assert year.status_code == 200
        for params in ({"from": "2024-13-01", "to": last}, {"to": last},
                       {"from": last, "to": "2024-05-20"}):  # fmt: skip
            assert client.get(path, params=params, headers=AUTH).status_code == 400
        assert client.get(path, params={"from": last, "to": last}).status_code == 401


def test_the_window_holds_every_zone_s_day() -> None:
    day = date(2024, 5, 20)
    start, end = settlement.window_ms(day, day)
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "Asia/Shanghai"):
        midnight = datetime.combine(day, time(), ZoneInfo(zone))
        assert start <= midnight.timestamp() * 1000
        assert (midnight + timedelta(days=1)).timestamp() * 1000 <= end
    assert settlement.window_ms(date.min, date.max)[0] < start
    assert datetime.fromtimestamp(start / 1000, UTC).date() == date(2024, 5, 19)

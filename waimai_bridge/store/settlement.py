"""The settlement report: the stored orders' money summed per store × platform × day, the day
in the store's time zone, read as a stream.

An order counts on the day, in its store's zone, its platform order was first seen
(``platform_orders.created_at_ms``). Only stored orders count: a platform order discarded
within its accept hold never does. Every figure is an integer sum in fen; a figure an order's
price does not state (a null ``commission``, ``merchant_income``, or income after refunds)
counts as 0 in the sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from waimai_bridge.config import DEFAULT_TIMEZONE, StoreConfig
from waimai_bridge.income import net_income
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store.tables import Anomaly, Order, PlatformOrder

MAX_RANGE_DAYS = 366
"""The most days one API request may cover (the CLI has no limit)."""
WIDEST_OFFSET = timedelta(hours=14)
"""How far any time zone is from UTC, at most: the window read around the days asked for."""
ONE_DAY = timedelta(days=1)
BATCH = 1000
"""Orders fetched from the database at a time (and between two progress reports)."""

Progress = Callable[[int], None]
"""Told how many orders have been read so far."""


@dataclass
class Sums:
    """The figures of a set of orders: a count and sums in fen (null figures counted as 0),
    and how many of them have a ``total_mismatch`` or ``income_mismatch`` anomaly, open
    or resolved."""

    orders: int = 0
    user_paid: int = 0
    platform_discount: int = 0
    merchant_discount: int = 0
    commission: int = 0
    merchant_income: int = 0
    refunded: int = 0
    net_income: int = 0
    mismatches: int = 0

    def add(self, other: Sums) -> None:
        """Count ``other``'s figures into these."""
        for column in fields(self):
            setattr(self, column.name, getattr(self, column.name) + getattr(other, column.name))


COLUMNS = tuple(column.name for column in fields(Sums))
"""The figures' names, in the report's order (its JSON keys after the row's key)."""
MONEY_COLUMNS = tuple(column for column in COLUMNS if column not in ("orders", "mismatches"))
"""The figures in fen."""
KEY_COLUMNS = ("store_id", "platform", "day")


@dataclass(frozen=True)
class Row:
    """One store on one platform on one day."""

    store_id: str
    platform: str
    day: date
    sums: Sums

    def as_json(self) -> dict[str, Any]:
        """The row as the API and ``--format json`` write it (the day an ISO date)."""
        return {
            "store_id": self.store_id, "platform": self.platform, "day": self.day.isoformat(),
            **asdict(self.sums),
        }  # fmt: skip


@dataclass(frozen=True)
class Report:
    """The rows (by day, store, platform) and their totals."""

    rows: list[Row]
    totals: Sums

    def as_json(self) -> dict[str, Any]:
        """``{"rows": [...], "totals": {...}}``."""
        return {"rows": [row.as_json() for row in self.rows], "totals": asdict(self.totals)}


def _fen(price: Mapping[str, Any] | None, key: str) -> int:
    value = (price or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def net_income_of(
    price: Mapping[str, Any] | None,
    refunded: int,
    state: str,
    stored: int | None,
    rule: str | None,
) -> int | None:
    """An order's income after refunds: the one stored with it, or worked out from its price
    for an order stored before the bridge kept it (no rule recorded); None when unstated."""
    if rule is not None:
        return stored
    raw = (price or {}).get("merchant_income")
    income = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    found, _ = net_income(
        merchant_income=income, user_paid=_fen(price, "user_paid"), refunded=refunded,
        state=state,
    )  # fmt: skip
    return found


def order_sums(
    price: Mapping[str, Any] | None,
    refunded: int,
    state: str,
    stored_net_income: int | None,
    income_rule: str | None,
    *,
    mismatch: bool = False,
) -> Sums:
    """One stored order's figures."""
    net = net_income_of(price, refunded, state, stored_net_income, income_rule)
    return Sums(
        orders=1, user_paid=_fen(price, "user_paid"),
        platform_discount=_fen(price, "platform_discount"),
        merchant_discount=_fen(price, "merchant_discount"), commission=_fen(price, "commission"),
        merchant_income=_fen(price, "merchant_income"), refunded=refunded, net_income=net or 0,
        mismatches=int(mismatch),
    )  # fmt: skip


def zones_of(stores: Mapping[str, StoreConfig]) -> dict[str, str]:
    """Each configured store's time zone, by store id."""
    return {store_id: store.timezone for store_id, store in stores.items()}


def window_ms(from_day: date, to_day: date) -> tuple[int, int]:
    """The UTC window (start inclusive, end exclusive, epoch ms) that holds every moment of
    the days ``from_day``…``to_day`` in any time zone."""
    start = _shifted(datetime.combine(from_day, time(), UTC), -WIDEST_OFFSET)
    end = _shifted(_shifted(datetime.combine(to_day, time(), UTC), ONE_DAY), WIDEST_OFFSET)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _shifted(moment: datetime, by: timedelta) -> datetime:
    """``moment`` moved ``by``, or left where it is at the calendar's ends."""
    try:
        return moment + by
    except OverflowError:
        return moment


MISMATCHES = (AnomalyRule.TOTAL_MISMATCH, AnomalyRule.INCOME_MISMATCH)
"""The anomalies that mark an order's figures as not adding up."""

_MISMATCH = (
    exists()
    .where(
        Anomaly.platform_order_pk == PlatformOrder.id,
        Anomaly.kind.in_([rule.value for rule in MISMATCHES]),
    )
    .label("mismatch")
)

_ORDERS = select(
    Order.store_id, Order.platform, Order.state, Order.price, Order.refunded_amount_fen,
    Order.net_income_fen, Order.income_rule, PlatformOrder.created_at_ms, _MISMATCH,
).join(PlatformOrder, PlatformOrder.order_id == Order.id)  # fmt: skip


def report(
    session: Session,
    *,
    from_day: date,
    to_day: date,
    zones: Mapping[str, str],
    store_id: str | None = None,
    platform: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """The settlement of the days ``from_day``…``to_day`` (both included), of one store and
    one platform when given; ``zones`` maps a store to its time zone (default
    Asia/Shanghai)."""
    if from_day > to_day:
        raise ValueError(f"the range starts ({from_day}) after it ends ({to_day})")
    start_ms, end_ms = window_ms(from_day, to_day)
    statement = _ORDERS.where(
        PlatformOrder.created_at_ms >= start_ms, PlatformOrder.created_at_ms < end_ms
    )
    if store_id is not None:
        statement = statement.where(Order.store_id == store_id)
    if platform is not None:
        statement = statement.where(Order.platform == platform)
    rows = session.execute(statement.execution_options(yield_per=BATCH))
    cells = _aggregate(rows, from_day, to_day, _Zones(zones), progress)
    ordered = sorted(cells.items(), key=lambda item: (item[0][2], item[0][0], item[0][1]))
    totals = Sums()
    for _, sums in ordered:
        totals.add(sums)
    return Report([Row(store, name, day, sums) for (store, name, day), sums in ordered], totals)


class _Zones:
    """The time zone of each store, each looked up once."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = names
        self._zones: dict[str, ZoneInfo] = {}

    def day(self, store_id: str, at_ms: int) -> date:
        zone = self._zones.get(store_id)
        if zone is None:
            zone = self._zones[store_id] = ZoneInfo(self._names.get(store_id, DEFAULT_TIMEZONE))
        return datetime.fromtimestamp(at_ms // 1000, tz=zone).date()


def _aggregate(
    rows: Iterable[Any], from_day: date, to_day: date, zones: _Zones, progress: Progress | None
) -> dict[tuple[str, str, date], Sums]:
    cells: dict[tuple[str, str, date], Sums] = {}
    read = 0
    for row in rows:
        read += 1
        if progress is not None and read % BATCH == 0:
            progress(read)
        day = zones.day(row.store_id, row.created_at_ms)
        if not from_day <= day <= to_day:
            continue
        sums = order_sums(
            row.price, row.refunded_amount_fen, row.state, row.net_income_fen, row.income_rule,
            mismatch=bool(row.mismatch),
        )  # fmt: skip
        cells.setdefault((row.store_id, row.platform, day), Sums()).add(sums)
    if progress is not None:
        progress(read)
    return cells

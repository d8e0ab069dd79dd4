"""What the run left in the database: a store × channel summary, and whether every order
ended where its story says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from waimai_bridge.models import OrderState
from waimai_bridge.store.settlement import net_income_of
from waimai_bridge.store.tables import Anomaly, Order, PlatformOrder

NOT_STORED = "not stored"
"""The column of platform orders the accept hold kept out of the order table."""


@dataclass
class Cell:
    """One store on one channel."""

    received: int = 0
    states: Counter[str] = field(default_factory=Counter)
    user_paid_fen: int = 0
    refunded_fen: int = 0
    income_fen: int = 0
    """What the stores earn after refunds (:func:`~waimai_bridge.store.settlement.net_income_of`,
    as the settlement report counts it)."""
    income_unstated: int = 0
    """Stored orders whose platform did not state the merchant's income: not counted as 0."""
    anomalies: int = 0

    def add_money(self, order: Order) -> None:
        """Count a stored order's money: paid, refunded and the merchant's income after
        refunds."""
        price = order.price or {}
        self.user_paid_fen += int(price.get("user_paid") or 0)
        self.refunded_fen += order.refunded_amount_fen
        income = net_income_of(
            price, order.refunded_amount_fen, order.state, order.net_income_fen, order.income_rule
        )
        if income is None:
            self.income_unstated += 1
        else:
            self.income_fen += income

    def add_cell(self, other: Cell) -> None:
        """Count another cell's figures into this one (the total row)."""
        self.received += other.received
        self.states.update(other.states)
        self.user_paid_fen += other.user_paid_fen
        self.refunded_fen += other.refunded_fen
        self.income_fen += other.income_fen
        self.income_unstated += other.income_unstated
        self.anomalies += other.anomalies


@dataclass(frozen=True)
class Outcome:
    """Where one order of the run ended: its state, or None when it was never stored."""

    platform: str
    platform_order_id: str
    store_id: str
    state: str | None
    order_id: int | None
    anomalies: tuple[str, ...]


def outcomes(session: Session, wanted: Mapping[str, Sequence[str]]) -> list[Outcome]:
    """The outcome of each ``platform → platform order ids`` the bridge has seen."""
    found: list[Outcome] = []
    for platform, ids in wanted.items():
        rows = session.execute(
            select(PlatformOrder, Order)
            .outerjoin(Order, PlatformOrder.order_id == Order.id)
            .where(PlatformOrder.platform == platform, PlatformOrder.platform_order_id.in_(ids))
        ).all()
        noted: dict[int, list[str]] = {}
        for anomaly in session.scalars(
            select(Anomaly).where(Anomaly.platform_order_pk.in_([row[0].id for row in rows]))
        ):
            if anomaly.platform_order_pk is not None:  # a channel's anomaly has none
                noted.setdefault(anomaly.platform_order_pk, []).append(
                    f"{anomaly.kind}: {anomaly.detail}"
                )
        found.extend(
            Outcome(
                platform, placed.platform_order_id, placed.store_id,
                None if order is None else order.state, placed.order_id,
                tuple(noted.get(placed.id, ())),
            )
            for placed, order in rows
        )  # fmt: skip
    return found


def cells(session: Session, results: Sequence[Outcome]) -> dict[tuple[str, str], Cell]:
    """The summary's cells, keyed by (store id, platform)."""
    table: dict[tuple[str, str], Cell] = {}
    order_ids = [result.order_id for result in results if result.order_id is not None]
    orders = {
        order.id: order for order in session.scalars(select(Order).where(Order.id.in_(order_ids)))
    }
    for result in results:
        cell = table.setdefault((result.store_id, result.platform), Cell())
        cell.received += 1
        cell.anomalies += len(result.anomalies)
        order = orders.get(result.order_id) if result.order_id is not None else None
        if order is None:
            cell.states[NOT_STORED] += 1
            continue
        cell.states[order.state] += 1
        cell.add_money(order)
    return dict(sorted(table.items()))


def yuan(fen: int) -> str:
    """Fen shown as yuan (the only place the demo turns fen into yuan)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def summary_table(table: Mapping[tuple[str, str], Cell], store_names: Mapping[str, str]) -> Table:
    """The store × channel table: orders by state, money in yuan, anomalies."""
    states = [NOT_STORED] + [
        state.value
        for state in OrderState
        if any(cell.states[state.value] for cell in table.values())
    ]
    names = ", ".join(f"{store} {name}" for store, name in store_names.items())
    out = Table(
        title="Lunch service by store and channel", title_justify="left",
        caption=names, caption_justify="left",
    )  # fmt: skip
    out.add_column("store")
    out.add_column("channel")
    out.add_column("orders", justify="right")
    headers = [state.replace("_", "\n").replace(" ", "\n") for state in states]
    for header in (*headers, "user paid\n¥", "refunded\n¥", "net income\n¥", "anomalies"):
        out.add_column(header, justify="right", min_width=max(map(len, header.split())))
    total = Cell()
    for (store_id, platform), cell in table.items():
        out.add_row(store_id, platform, *_figures(cell, states))
        total.add_cell(cell)
    out.add_section()
    out.add_row("all", "all", *_figures(total, states), style="bold")
    return out


def _figures(cell: Cell, states: Sequence[str]) -> list[str]:
    return [
        str(cell.received),
        *(str(cell.states[state] or "") for state in states),
        yuan(cell.user_paid_fen),
        yuan(cell.refunded_fen),
        _income(cell),
        str(cell.anomalies or ""),
    ]


def _income(cell: Cell) -> str:
    """The merchant's income after refunds, and how many orders did not state theirs."""
    unstated = f"\n+{cell.income_unstated} unstated" if cell.income_unstated else ""
    return yuan(cell.income_fen) + unstated

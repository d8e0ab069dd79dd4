"""Platform orders locked for a transaction, and their event logs as the fold reads them.

A transaction that changes orders starts by locking their platform orders (``SELECT …
FOR UPDATE`` on PostgreSQL, SQLite's writer lock), in (platform, order id) order so two
transactions never deadlock, and reads the rows into :class:`Locked` records it changes and
writes back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Row, bindparam, select, tuple_
from sqlalchemy.orm import Session

from waimai_bridge.income import IncomeRule, net_income
from waimai_bridge.models import KitchenStep, PlatformState
from waimai_bridge.statemachine import LogEntry, OrderFold, fold
from waimai_bridge.store.tables import Order, OrderEvent, PlatformOrder


@dataclass
class StoredOrder:
    """A stored order's row as this transaction reads and changes it."""

    id: int
    platform: str
    store_id: str
    state: str
    rider_state: str | None
    refunded_amount_fen: int
    price: dict[str, Any] | None
    net_income_fen: int | None
    income_rule: str | None
    version: int
    updated_at_ms: int
    changed: bool = False

    def settle_income(self, latest_price: dict[str, Any] | None) -> int | None:
        """Work out the income after refunds again (:mod:`waimai_bridge.income`), taking
        ``latest_price`` (the platform order's newest breakdown) as the platform's word
        since; marks the order changed when it moved. Returns what the rule alone gives
        when the platform's word differs from it (else None)."""
        price = self.price or {}
        stated, paid = price.get("merchant_income"), price.get("user_paid")
        restated = (latest_price or {}).get("merchant_income")
        net, rule = net_income(
            merchant_income=stated, user_paid=paid, refunded=self.refunded_amount_fen,
            state=self.state, restated=restated,
        )  # fmt: skip
        by_rule, _ = net_income(
            merchant_income=stated, user_paid=paid, refunded=self.refunded_amount_fen,
            state=self.state,
        )  # fmt: skip
        if (net, rule.value) != (self.net_income_fen, self.income_rule):
            self.net_income_fen, self.income_rule, self.changed = net, rule.value, True
        return by_rule if rule is IncomeRule.PLATFORM and by_rule != net else None

    def row(self) -> dict[str, Any]:
        """The values to write back."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "changed"}


@dataclass
class Locked:
    """A locked platform order's row as this transaction reads and changes it, with its
    stored order if any."""

    id: int
    platform: str
    platform_order_id: str
    store_id: str
    store_inferred: bool
    state_code: int | None
    order_state: str | None
    price: dict[str, Any] | None
    details: dict[str, Any] | None
    order_id: int | None
    hold_started_at_ms: int | None
    discarded: bool
    updated_at_ms: int
    order: StoredOrder | None = None


def record_columns(table: type[Any], record: type[Any]) -> list[Any]:
    """The columns of ``table`` that fill the dataclass ``record``."""
    names = {field.name for field in fields(record)}
    return [column for column in table.__table__.columns if column.name in names]


_LOCK_ORDERS = (
    select(*record_columns(PlatformOrder, Locked))
    .where(
        tuple_(PlatformOrder.platform, PlatformOrder.platform_order_id).in_(
            bindparam("keys", expanding=True)
        )
    )
    .order_by(PlatformOrder.platform, PlatformOrder.platform_order_id)
    .with_for_update()
)
"""Platform orders by (platform, order id), locked in that order."""


_STORED = select(*record_columns(Order, StoredOrder)).where(
    Order.id.in_(bindparam("ids", expanding=True))
)


def lock_orders(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Locked]:
    """The platform orders of ``keys`` that exist, locked, by key."""
    rows = session.connection().execute(_LOCK_ORDERS, {"keys": list(keys)})
    return {(row.platform, row.platform_order_id): Locked(**row._mapping) for row in rows}


def with_stored_orders(session: Session, locked: Collection[Locked]) -> None:
    """Read the stored orders of locked platform orders. Only once the locks are held: read
    with them, an order another transaction stored while this one waited would be missed
    (PostgreSQL rechecks only the locked rows)."""
    ids = [platform_order.order_id for platform_order in locked if platform_order.order_id]
    if not ids:
        return
    stored = {
        row.id: StoredOrder(**row._mapping)
        for row in session.connection().execute(_STORED, {"ids": ids})
    }
    for platform_order in locked:
        if platform_order.order_id is not None:
            platform_order.order = stored[platform_order.order_id]


LogRow = Row[*tuple[Any, ...]]
"""A logged event as :func:`read_logs` reads it."""


def log_entry(row: LogRow) -> LogEntry:
    return LogEntry(
        key=row.idempotency_key,
        platform_time_ms=row.platform_time_ms,
        arrival=row.id,
        state=None if row.state_code is None else PlatformState(row.state_code),
        kitchen_step=None if row.kitchen_step is None else KitchenStep(row.kitchen_step),
        partial=row.partial,
        refund_amount_fen=row.refund_amount_fen,
    )


_LOG_COLUMNS = (
    OrderEvent.id, OrderEvent.platform_order_pk, OrderEvent.idempotency_key,
    OrderEvent.platform_time_ms, OrderEvent.state_code, OrderEvent.kitchen_step,
    OrderEvent.partial, OrderEvent.refund_amount_fen, OrderEvent.received_at_ms,
)  # fmt: skip
"""What folding needs of a logged event (not its payload)."""


_LOGS = (
    select(*_LOG_COLUMNS)
    .where(OrderEvent.platform_order_pk.in_(bindparam("pks", expanding=True)))
    .order_by(OrderEvent.id)
)


def read_logs(session: Session, platform_order_pks: Sequence[int]) -> dict[int, list[LogRow]]:
    """The event logs of several platform orders, each in arrival order."""
    logs: dict[int, list[LogRow]] = {pk: [] for pk in platform_order_pks}
    if platform_order_pks:
        rows = session.connection().execute(_LOGS, {"pks": list(platform_order_pks)})
        for row in rows:
            logs[row.platform_order_pk].append(row)
    return logs


def user_paid_of(price: dict[str, Any] | None) -> int | None:
    return None if price is None else int(price["user_paid"])


def order_fold(
    session: Session, platform_order: Locked, unread: Sequence[LogEntry] = ()
) -> OrderFold:
    """The fold of a platform order's whole log, with the ``unread`` events (received,
    not yet applied) after it: where it stands now."""
    log = read_logs(session, [platform_order.id])[platform_order.id]
    entries = [*(log_entry(row) for row in log), *unread]
    return fold(entries, user_paid_fen=user_paid_of(platform_order.price))

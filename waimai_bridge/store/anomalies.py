"""Anomalies of orders and of stores' channels: opened once, resolved when the order or the
channel moved on, each change told to subscribers (``anomaly.opened`` /
``anomaly.resolved``) in the same transaction; and read back for the API and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from waimai_bridge.metrics import ANOMALIES
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import changes, outbox
from waimai_bridge.store.anomaly_rules import Rule, Window
from waimai_bridge.store.tables import Anomaly, Order, OrderItem, PlatformOrder, SkuMapping
from waimai_bridge.store.upsert import insert_ignoring_conflict

DETAIL_LENGTH = 500


@dataclass(frozen=True)
class Opening:
    """An anomaly to open on a platform order (and its stored order, if any)."""

    platform_order_pk: int
    order_id: int | None
    platform: str
    platform_order_id: str
    store_id: str
    rule: str
    detail: str


@dataclass(frozen=True)
class Listed:
    """An anomaly with its order's platform, ids and store (a channel's anomaly: its
    platform and store, and no order)."""

    anomaly_id: int
    rule: str
    detail: str
    order_id: int | None
    platform: str
    platform_order_id: str | None
    store_id: str
    opened_at_ms: int
    resolved_at_ms: int | None


def open_anomalies(session: Session, openings: Sequence[Opening], now_ms: int) -> int:
    """Open the anomalies not open or resolved already (one per platform order, rule and
    detail), telling subscribers of each; how many were opened."""
    if not openings:
        return 0
    by_key = {(o.platform_order_pk, o.rule, o.detail[:DETAIL_LENGTH]): o for o in openings}
    rows = [
        {"platform_order_pk": pk, "order_id": o.order_id, "kind": rule, "detail": detail,
         "created_at_ms": now_ms, "resolved_at_ms": None}
        for (pk, rule, detail), o in by_key.items()
    ]  # fmt: skip
    returning = (Anomaly.id, Anomaly.platform_order_pk, Anomaly.kind, Anomaly.detail)
    opened = insert_ignoring_conflict(session, Anomaly, rows, returning=returning)
    for anomaly_id, pk, rule, detail in opened:
        opening = by_key[pk, rule, detail]
        listed = Listed(
            anomaly_id, rule, detail, opening.order_id, opening.platform,
            opening.platform_order_id, opening.store_id, now_ms, None,
        )  # fmt: skip
        outbox.anomaly_change(session, **asdict(listed), now_ms=now_ms)
        _noted(session, listed, now_ms)
        ANOMALIES.labels(rule, "opened").inc()
    return len(opened)


def resolve(session: Session, anomaly_ids: Sequence[int], now_ms: int) -> int:
    """Resolve these open anomalies, telling subscribers of each; how many were resolved."""
    if not anomaly_ids:
        return 0
    session.execute(
        update(Anomaly)
        .where(Anomaly.id.in_(anomaly_ids), Anomaly.resolved_at_ms.is_(None))
        .values(resolved_at_ms=now_ms)
        .execution_options(synchronize_session=False)
    )
    resolved = listing(session, ids=anomaly_ids, limit=len(anomaly_ids))
    for anomaly in resolved:
        if anomaly.resolved_at_ms == now_ms:
            outbox.anomaly_change(session, **asdict(anomaly), now_ms=now_ms)
            _noted(session, anomaly, now_ms)
            ANOMALIES.labels(anomaly.rule, "resolved").inc()
    return sum(1 for anomaly in resolved if anomaly.resolved_at_ms == now_ms)


def evaluate(session: Session, rule: Rule, window: Window, *, limit: int) -> tuple[int, int]:
    """Open the rule's anomaly on orders it now holds for (``limit`` at most, when the rule
    is evaluated), and resolve its open anomalies whose orders it no longer holds for;
    ``(opened, resolved)``."""
    if rule.of_channel:
        return 0, 0
    opened = 0
    if rule.evaluated:
        seen = exists(
            select(Anomaly.id).where(
                Anomaly.platform_order_pk == PlatformOrder.id, Anomaly.kind == rule.name.value
            )
        )
        columns = (
            PlatformOrder.id, PlatformOrder.order_id, PlatformOrder.platform,
            PlatformOrder.platform_order_id, PlatformOrder.store_id,
        )  # fmt: skip
        found = session.execute(
            select(*columns)
            .outerjoin(Order, Order.id == PlatformOrder.order_id)
            .where(rule.holds(window), ~seen)
            .order_by(PlatformOrder.id)
            .limit(limit)
        )
        openings = [Opening(*row, rule=rule.name.value, detail=rule.says) for row in found]
        opened = open_anomalies(session, openings, window.now_ms)
    resolved, after = 0, 0
    while True:
        page = session.execute(
            select(Anomaly.id, Anomaly.platform_order_pk)
            .where(Anomaly.kind == rule.name.value, Anomaly.resolved_at_ms.is_(None))
            .where(Anomaly.id > after)
            .order_by(Anomaly.id)
            .limit(limit)
        ).all()
        if not page:
            return opened, resolved
        pks = {pk for _, pk in page}
        holding = set(
            session.scalars(
                select(PlatformOrder.id)
                .outerjoin(Order, Order.id == PlatformOrder.order_id)
                .where(PlatformOrder.id.in_(pks), rule.holds(window))
            )
        )
        gone = [anomaly_id for anomaly_id, pk in page if pk not in holding]
        resolved += resolve(session, gone, window.now_ms)
        after = page[-1][0]


def remap_unmapped(session: Session) -> int:
    """Map the lines of orders with an open ``unmapped_sku`` anomaly whose SKU the mapping
    knows now (so the anomaly can resolve); how many lines were mapped."""
    product = (
        select(SkuMapping.product_id)
        .join(Order, Order.platform == SkuMapping.platform)
        .where(Order.id == OrderItem.order_id, SkuMapping.sku_code == OrderItem.sku_code)
        .scalar_subquery()
    )
    flagged = select(Anomaly.order_id).where(
        Anomaly.kind == AnomalyRule.UNMAPPED_SKU.value,
        Anomaly.resolved_at_ms.is_(None),
        Anomaly.order_id.is_not(None),
    )
    result = session.execute(
        update(OrderItem)
        .where(OrderItem.order_id.in_(flagged), OrderItem.unmapped.is_(True))
        .where(OrderItem.sku_code.is_not(None), product.is_not(None))
        .values(product_id=product, unmapped=False)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def open_channel(
    session: Session, platform: str, store_id: str, rule: AnomalyRule, detail: str, *, now_ms: int
) -> bool:
    """Open a channel's anomaly of ``rule``, telling subscribers, unless one is open
    already; whether it was opened."""
    detail = detail[:DETAIL_LENGTH]
    row = {
        "platform_order_pk": None, "order_id": None, "platform": platform,
        "store_id": store_id, "kind": rule.value, "detail": detail,
        "created_at_ms": now_ms, "resolved_at_ms": None,
    }  # fmt: skip
    anomaly_id = insert_ignoring_conflict(session, Anomaly, row)
    if anomaly_id is None:
        return False
    listed = Listed(anomaly_id, rule.value, detail, None, platform, None, store_id, now_ms, None)
    outbox.anomaly_change(session, **asdict(listed), now_ms=now_ms)
    ANOMALIES.labels(rule.value, "opened").inc()
    return True


def resolve_channel(
    session: Session, platform: str, store_id: str, rule: AnomalyRule, *, now_ms: int
) -> int:
    """Resolve a channel's open anomaly of ``rule``, telling subscribers; how many (0 or
    1)."""
    found = session.scalars(
        select(Anomaly.id).where(
            Anomaly.platform_order_pk.is_(None), Anomaly.kind == rule.value,
            Anomaly.platform == platform, Anomaly.store_id == store_id,
            Anomaly.resolved_at_ms.is_(None),
        )
    ).all()  # fmt: skip
    return resolve(session, list(found), now_ms)


def listing(
    session: Session,
    *,
    is_open: bool | None = None,
    store_id: str | None = None,
    platform: str | None = None,
    rule: str | None = None,
    platform_order_pk: int | None = None,
    ids: Sequence[int] | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Listed]:
    """Anomalies of orders and channels, newest first, narrowed by the filters given
    (``is_open``: only the open ones, or only the resolved ones); ``before_id`` pages on."""
    platform_of = func.coalesce(PlatformOrder.platform, Anomaly.platform)
    store_of = func.coalesce(PlatformOrder.store_id, Anomaly.store_id)
    statement = select(
        Anomaly.id, Anomaly.kind, Anomaly.detail, Anomaly.order_id, platform_of,
        PlatformOrder.platform_order_id, store_of, Anomaly.created_at_ms,
        Anomaly.resolved_at_ms,
    ).outerjoin(PlatformOrder, PlatformOrder.id == Anomaly.platform_order_pk)  # fmt: skip
    filters = {
        store_of: store_id,
        platform_of: platform,
        Anomaly.kind: rule,
        Anomaly.platform_order_pk: platform_order_pk,
    }
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(column == value)
    if is_open is not None:
        resolved = Anomaly.resolved_at_ms
        statement = statement.where(resolved.is_(None) if is_open else resolved.is_not(None))
    if ids is not None:
        statement = statement.where(Anomaly.id.in_(ids))
    if before_id is not None:
        statement = statement.where(Anomaly.id < before_id)
    statement = statement.order_by(Anomaly.id.desc()).limit(limit)
    return [Listed(*row) for row in session.execute(statement)]


def _noted(session: Session, anomaly: Listed, now_ms: int) -> None:
    if anomaly.platform_order_id is None:  # the board's feed is of orders
        return
    changed = changes.Changed(
        anomaly.platform, anomaly.platform_order_id, anomaly.store_id, anomaly.order_id,
        changes.ANOMALY,
    )  # fmt: skip
    changes.note(session, [changed], now_ms)

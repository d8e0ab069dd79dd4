"""The order board's cards: each order as a store's staff sees it, with the actions its state
allows and whether it needs someone now.

A page of cards is read in a fixed number of queries, whatever its length: the platform
orders with their stored orders, then the lines, open anomalies, recent actions and event
logs of all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, func, select, tuple_
from sqlalchemy.orm import Session

from waimai_bridge.action_rules import REQUEST_NAMES, Answers, allowed_actions
from waimai_bridge.config import DEFAULT_TIMEZONE
from waimai_bridge.models import Action, OrderState, PlatformState
from waimai_bridge.statemachine import OrderFold, fold
from waimai_bridge.store.order_log import log_entry, read_logs
from waimai_bridge.store.tables import Anomaly, Order, OrderItem, OutboundAction, PlatformOrder

BOARD_TIME_ZONE = ZoneInfo(DEFAULT_TIMEZONE)
"""Where a board's day starts and ends when it shows more than one store."""
MAX_CARDS = 500
"""The most cards a board shows: the newest of the day."""
RECENT_ACTIONS = 5
"""The actions a card shows, newest first."""
NEW = "new"
"""The state of an order not accepted yet (not stored)."""
DISCARDED = "discarded"
"""The state of an order cancelled within its accept hold."""
STATES = frozenset({NEW, DISCARDED, *(state.value for state in OrderState)})
"""The states a card can be in."""

Rules = Callable[[str], tuple[frozenset[Action], Answers]]
"""A platform's supported actions, and which request each answering action answers there."""
Key = tuple[str, str]
"""A platform order: (platform, platform order id)."""
Card = dict[str, Any]


def iso(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC time, as the API writes times."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def day_start_ms(now_ms: int, zone: ZoneInfo = BOARD_TIME_ZONE) -> int:
    """The start of the day in ``zone`` that holds ``now_ms``, in epoch milliseconds."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000)


_ORDERS = select(
    PlatformOrder.id, PlatformOrder.platform, PlatformOrder.platform_order_id,
    PlatformOrder.store_id, PlatformOrder.state_code, PlatformOrder.price,
    PlatformOrder.order_id, PlatformOrder.discarded, PlatformOrder.details,
    PlatformOrder.created_at_ms, PlatformOrder.updated_at_ms, Order.state,
    Order.rider_state, Order.price.label("order_price"),
    Order.updated_at_ms.label("order_updated_at_ms"),
).outerjoin(Order, Order.id == PlatformOrder.order_id)  # fmt: skip
"""The platform orders with what their stored order adds."""


def cards(
    session: Session, rules: Rules, *, now_ms: int, store_id: str | None = None,
    platform: str | None = None, state: str | None = None, limit: int = MAX_CARDS,
    zone: ZoneInfo = BOARD_TIME_ZONE,
) -> list[Card]:  # fmt: skip
    """Today's orders in ``zone`` (of one store, platform, state when given), newest
    first."""
    statement = _ORDERS.where(PlatformOrder.created_at_ms >= day_start_ms(now_ms, zone))
    if store_id is not None:
        statement = statement.where(PlatformOrder.store_id == store_id)
    if platform is not None:
        statement = statement.where(PlatformOrder.platform == platform)
    if state == NEW:
        statement = statement.where(
            PlatformOrder.order_id.is_(None), PlatformOrder.discarded.is_(False)
        )
    elif state == DISCARDED:
        statement = statement.where(PlatformOrder.discarded.is_(True))
    elif state is not None:
        statement = statement.where(Order.state == state)
    statement = statement.order_by(
        PlatformOrder.created_at_ms.desc(), PlatformOrder.id.desc()
    ).limit(max(1, min(limit, MAX_CARDS)))
    return _cards(session, session.execute(statement).all(), rules)


def cards_of(session: Session, keys: Sequence[Key], rules: Rules) -> dict[Key, Card]:
    """The cards of these platform orders (those that exist), by key."""
    if not keys:
        return {}
    statement = _ORDERS.where(
        tuple_(PlatformOrder.platform, PlatformOrder.platform_order_id).in_(list(keys))
    )
    built = _cards(session, session.execute(statement).all(), rules)
    return {(card["platform"], card["platform_order_id"]): card for card in built}


def card(session: Session, platform: str, platform_order_id: str, rules: Rules) -> Card | None:
    """One platform order's card; None when the bridge has never seen it."""
    return cards_of(session, [(platform, platform_order_id)], rules).get(
        (platform, platform_order_id)
    )


OrderRow = Row[Any]


def _cards(session: Session, rows: Sequence[OrderRow], rules: Rules) -> list[Card]:
    if not rows:
        return []
    pks = [row.id for row in rows]
    keys = [(row.platform, row.platform_order_id) for row in rows]
    items = _items(session, [row.order_id for row in rows if row.order_id is not None])
    anomalies = _open_anomalies(session, pks)
    recent = _recent_actions(session, keys)
    logs = read_logs(session, pks)
    known: dict[str, tuple[frozenset[Action], Answers]] = {}
    built = []
    for row in rows:
        if row.platform not in known:
            known[row.platform] = rules(row.platform)
        supported, answers = known[row.platform]
        # the user's payment only sets the refunded amount, which a card does not show
        folded = fold(log_entry(entry) for entry in logs[row.id])
        built.append(
            _card(
                row, folded, allowed_actions(folded, supported, answers),
                items.get(row.order_id) if row.order_id is not None else _price_items(row.price),
                anomalies.get(row.id, []), recent.get((row.platform, row.platform_order_id), []),
            )
        )  # fmt: skip
    return built


def _card(
    row: OrderRow, folded: OrderFold, actions: list[Action], items: list[dict[str, Any]] | None,
    anomalies: list[dict[str, Any]], recent: list[dict[str, Any]],
) -> Card:  # fmt: skip
    state = DISCARDED if row.discarded else NEW if row.order_id is None else row.state
    request = None
    if folded.pending_request is not None and not folded.refunded:
        request = REQUEST_NAMES.get(folded.pending_request)
    rider_state = row.rider_state if row.order_id is not None else None
    if rider_state is None and folded.rider_state is not None:
        rider_state = folded.rider_state.value
    price = row.order_price if row.order_price is not None else row.price
    details = row.details if isinstance(row.details, dict) else {}
    to_accept = state == NEW and folded.fulfilment is None and not folded.refunded
    return {
        "key": f"{row.platform}/{row.platform_order_id}",
        "platform": row.platform,
        "platform_order_id": row.platform_order_id,
        "order_id": row.order_id,
        "store_id": row.store_id,
        "day_seq": details.get("day_seq"),
        "remark": details.get("remark"),
        "state": state,
        "platform_state": None
        if row.state_code is None
        else {"code": row.state_code, "name": PlatformState(row.state_code).label},
        "rider_state": rider_state,
        "request": request,
        "items": items or [],
        "user_paid": _fen(price, "user_paid"),
        "merchant_income": _fen(price, "merchant_income"),
        "anomalies": anomalies,
        "actions": [action.value for action in actions],
        "recent_actions": recent,
        "needs_action": to_accept or request is not None,
        "created_at": iso(row.created_at_ms),
        "updated_at": iso(max(row.updated_at_ms, row.order_updated_at_ms or 0)),
    }


def _fen(price: Any, field: str) -> int | None:
    value = price.get(field) if isinstance(price, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _price_items(price: Any) -> list[dict[str, Any]]:
    """The lines of an order not stored yet, from its price (not mapped yet, so not
    unmapped either)."""
    lines = price.get("items") if isinstance(price, dict) else None
    if not isinstance(lines, list):
        return []
    return [
        {"name": str(line.get("name", "")), "quantity": line.get("quantity"), "unmapped": False}
        for line in lines
        if isinstance(line, dict)
    ]


def _items(session: Session, order_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return found
    rows = session.execute(
        select(OrderItem.order_id, OrderItem.name, OrderItem.quantity, OrderItem.unmapped)
        .where(OrderItem.order_id.in_(order_ids))
        .order_by(OrderItem.order_id, OrderItem.line)
    )
    for row in rows:
        found[row.order_id].append(
            {"name": row.name, "quantity": row.quantity, "unmapped": row.unmapped}
        )
    return found


def _open_anomalies(session: Session, pks: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    rows = session.execute(
        select(Anomaly.platform_order_pk, Anomaly.kind, Anomaly.detail)
        .where(Anomaly.platform_order_pk.in_(pks), Anomaly.resolved_at_ms.is_(None))
        .order_by(Anomaly.id)
    )
    for row in rows:
        found.setdefault(row.platform_order_pk, []).append({"rule": row.kind, "detail": row.detail})
    return found


def _recent_actions(session: Session, keys: Sequence[Key]) -> dict[Key, list[dict[str, Any]]]:
    newest = (
        func.row_number()
        .over(
            partition_by=(OutboundAction.platform, OutboundAction.platform_order_id),
            order_by=OutboundAction.id.desc(),
        )
        .label("newest")
    )
    ranked = (
        select(
            OutboundAction.id,
            OutboundAction.platform,
            OutboundAction.platform_order_id,
            OutboundAction.action,
            OutboundAction.status,
            OutboundAction.result_message,
            newest,
        )
        .where(tuple_(OutboundAction.platform, OutboundAction.platform_order_id).in_(list(keys)))
        .subquery()
    )
    rows = session.execute(
        select(ranked).where(ranked.c.newest <= RECENT_ACTIONS).order_by(ranked.c.id.desc())
    )
    found: dict[Key, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault((row.platform, row.platform_order_id), []).append(
            {"id": row.id, "action": row.action, "status": row.status,
             "message": row.result_message}
        )  # fmt: skip
    return found

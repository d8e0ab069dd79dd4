"""The evaluation of one anomaly rule against the store, at its edges: a capped round takes the
orders not flagged yet, in the order the bridge saw them; every page of open anomalies is
resolved and counted; a rule opened as orders are stored only resolves; and a second round at
the same moment resolves nothing again."""

from __future__ import annotations

from sqlalchemy import select, text, update

from tests.test_anomaly_conditions import NOW, RULE, ago, platform_order, window
from waimai_bridge.models import OrderState
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import anomalies as anomaly_store
from waimai_bridge.store.anomaly_rules import MINUTE_MS, Window
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Anomaly, Order, PlatformOrder

LATE = AnomalyRule.NOT_ACCEPTED
"""The rule most tests here drive: every order :func:`platform_order` makes holds it."""


def add(database: Database, *rows: PlatformOrder) -> None:
    with database.transaction() as session:
        session.add_all(rows)


def evaluate(
    database: Database, rule: AnomalyRule = LATE, *, limit: int, at: Window | None = None
) -> tuple[int, int]:
    """One evaluation of ``rule`` in a transaction of its own; ``(opened, resolved)``."""
    with database.transaction() as session:
        return anomaly_store.evaluate(session, RULE[rule], at or window(), limit=limit)


def flagged(database: Database, rule: AnomalyRule = LATE) -> dict[str, bool]:
    """The platform orders with an anomaly of ``rule``: whether it is open."""
    with database.transaction() as session:
        found = anomaly_store.listing(session, rule=rule.value, limit=100)
    return {str(a.platform_order_id): a.resolved_at_ms is None for a in found}


def accepted(database: Database, *orders: str) -> None:
    """The ``orders`` taken up (their hold started): not late any more."""
    with database.transaction() as session:
        session.execute(
            update(PlatformOrder)
            .where(PlatformOrder.platform_order_id.in_(orders))
            .values(hold_started_at_ms=NOW)
        )


def test_a_capped_round_flags_the_orders_not_flagged_yet_until_every_one_is(
    database: Database,
) -> None:
    add(database, *(platform_order(name) for name in ("A", "B", "C")))
    assert evaluate(database, limit=2) == (2, 0)
    assert flagged(database) == {"A": True, "B": True}
    assert evaluate(database, limit=1) == (1, 0), "the flagged ones take no room in the round"
    assert flagged(database) == {"A": True, "B": True, "C": True}
    assert evaluate(database, limit=1) == (0, 0)


def test_a_resolved_anomaly_takes_no_room_in_a_round_either(database: Database) -> None:
    add(database, platform_order("A"))
    assert evaluate(database, limit=1) == (1, 0)
    accepted(database, "A")
    assert evaluate(database, limit=1) == (0, 1)
    with database.transaction() as session:  # A late again, B late now
        session.execute(update(PlatformOrder).values(hold_started_at_ms=None))
        session.add(platform_order("B"))
    assert evaluate(database, limit=1) == (1, 0)
    assert flagged(database) == {"A": False, "B": True}, "once per order, never reopened"


def test_a_capped_round_flags_the_orders_in_the_order_the_bridge_saw_them(
    database: Database,
) -> None:
    overdue = AnomalyRule.NOT_COMPLETED
    days = 24 * 60
    add(database, platform_order("first", order={}, created_at_ms=ago(3 * days)))
    add(database, platform_order("second", order={}, created_at_ms=ago(5 * days)))
    add(database, platform_order("third", order={}, created_at_ms=ago(4 * days)))
    with database.transaction() as session:  # rewritten since: PostgreSQL keeps it last now
        session.execute(text("UPDATE platform_orders SET created_at_ms = created_at_ms - 1 "
                             "WHERE platform_order_id = 'first'"))  # fmt: skip
    assert evaluate(database, overdue, limit=1) == (1, 0)
    assert flagged(database, overdue) == {"first": True}
    assert evaluate(database, overdue, limit=1) == (1, 0)
    assert flagged(database, overdue) == {"first": True, "second": True}


def test_every_page_of_open_anomalies_is_resolved_and_counted(database: Database) -> None:
    add(database, *(platform_order(name) for name in ("A", "B", "C")))
    assert evaluate(database, limit=10) == (3, 0)
    accepted(database, "A", "B", "C")
    assert evaluate(database, limit=1) == (0, 3)
    assert flagged(database) == {"A": False, "B": False, "C": False}


def test_the_anomaly_of_an_order_late_first_is_resolved_with_the_others(
    database: Database,
) -> None:
    add(
        database,
        platform_order("A", created_at_ms=ago(5)),
        platform_order("B", created_at_ms=ago(5)),
    )
    add(database, platform_order("C", created_at_ms=ago(120)))
    assert evaluate(database, limit=10) == (1, 0)
    later = window(now_ms=NOW + 10 * MINUTE_MS)
    assert evaluate(database, limit=10, at=later) == (2, 0)
    accepted(database, "A", "B", "C")
    assert evaluate(database, limit=2, at=later) == (0, 3)
    assert flagged(database) == {"A": False, "B": False, "C": False}


def test_a_second_round_at_the_same_moment_resolves_nothing_again(database: Database) -> None:
    add(database, platform_order("A"))
    assert evaluate(database, limit=10) == (1, 0)
    accepted(database, "A")
    assert evaluate(database, limit=10) == (0, 1)
    assert evaluate(database, limit=10) == (0, 0), "resolved once, told once"
    assert flagged(database) == {"A": False}


def test_a_rule_opened_as_orders_are_stored_opens_nothing_when_evaluated_but_resolves(
    database: Database,
) -> None:
    mismatch = AnomalyRule.TOTAL_MISMATCH
    add(database, platform_order("ODD", order={}))
    with database.transaction() as session:
        placed = session.scalars(select(PlatformOrder)).one()
        opening = anomaly_store.Opening(
            placed.id, placed.order_id, placed.platform, placed.platform_order_id,
            placed.store_id, mismatch.value, RULE[mismatch].says,
        )  # fmt: skip
        assert anomaly_store.open_anomalies(session, [opening], NOW) == 1
    assert evaluate(database, mismatch, limit=10) == (0, 0)
    with database.transaction() as session:
        session.execute(update(Order).values(state=OrderState.COMPLETED.value))
    assert evaluate(database, mismatch, limit=10) == (0, 1)
    assert flagged(database, mismatch) == {"ODD": False}


def test_a_listing_is_narrowed_by_each_filter_given_newest_first_a_page_at_a_time(
    database: Database,
) -> None:
    mine = platform_order("MINE", order={})
    other = platform_order("OTHER", platform="otherpay", store_id="S002")
    add(database, mine, other)
    assert mine.order is not None
    with database.transaction() as session:
        session.add_all(
            Anomaly(platform_order_pk=pk, platform=platform, store_id=store_id,
                    order_id=order_id, kind=rule, detail=f"d{n}", created_at_ms=NOW + n,
                    resolved_at_ms=NOW + 9 if n == 2 else None)
            for n, (pk, platform, store_id, order_id, rule) in enumerate([
                (mine.id, None, None, mine.order.id, AnomalyRule.UNMAPPED_SKU),
                (other.id, None, None, None, LATE),
                (mine.id, None, None, mine.order.id, LATE),
                (None, "testpay", "S003", None, AnomalyRule.CHANNEL_UNAUTHORIZED),
            ])
        )  # fmt: skip

    def listed(**filters: object) -> list[str]:
        with database.transaction() as session:
            found = anomaly_store.listing(session, **filters)  # type: ignore[arg-type]
        return [anomaly.detail for anomaly in found]

    assert listed() == ["d3", "d2", "d1", "d0"]
    assert listed(is_open=True) == ["d3", "d1", "d0"]
    assert listed(is_open=False) == ["d2"]
    assert listed(store_id="S001") == ["d2", "d0"]
    assert listed(store_id="S003") == ["d3"]
    assert listed(platform="otherpay") == ["d1"]
    assert listed(platform="testpay") == ["d3", "d2", "d0"]
    assert listed(rule=LATE.value) == ["d2", "d1"]
    assert listed(platform_order_pk=mine.id) == ["d2", "d0"]
    with database.transaction() as session:
        ids = [a.anomaly_id for a in anomaly_store.listing(session)]
    assert listed(ids=ids[1:3]) == ["d2", "d1"]
    assert listed(before_id=ids[1]) == ["d1", "d0"]
    assert listed(limit=2) == ["d3", "d2"]
    with database.transaction() as session:
        channel, resolved = anomaly_store.listing(session, limit=2)
        [of_order] = anomaly_store.listing(session, platform_order_pk=other.id)
    assert (channel.platform, channel.store_id, channel.platform_order_id, channel.order_id) == (
        "testpay", "S003", None, None,
    )  # fmt: skip
    assert (resolved.rule, resolved.order_id, resolved.opened_at_ms, resolved.resolved_at_ms) == (
        LATE.value, mine.order.id, NOW + 2, NOW + 9,
    )  # fmt: skip
    assert (of_order.platform, of_order.platform_order_id, of_order.store_id) == (
        "otherpay", "OTHER", "S002",
    )  # fmt: skip


def test_a_listing_without_a_limit_holds_a_hundred(database: Database) -> None:
    order = platform_order("MANY")
    add(database, order)
    with database.transaction() as session:
        session.add_all(
            Anomaly(platform_order_pk=order.id, kind=LATE, detail=f"d{n}", created_at_ms=NOW,
                    resolved_at_ms=None)
            for n in range(101)
        )  # fmt: skip
    with database.transaction() as session:
        assert len(anomaly_store.listing(session)) == 100

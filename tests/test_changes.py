"""The feed of committed changes the order board follows: every change of a platform order
(stored or not), an action's outcome and an anomaly is noted in the transaction that makes
it, in order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.sample_plugin import PRICE
from tests.test_anomaly_conditions import platform_order
from tests.test_hold import HOLD_MS, STORE, T0, Worker, working
from tests.test_store_mutants import outbound_action
from waimai_bridge.models import ActionOutcome, ActionResult
from waimai_bridge.store import actions, changes, subscriptions
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Delivery

MINUTE = 60_000


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[Worker]:
    with working(database, tmp_path, "[anomalies]\ninterval_seconds = 0") as made:
        yield made


def noted(worker: Worker, after: int = 0, store_id: str | None = None) -> list[changes.Noted]:
    with worker.bridge.database.transaction() as session:
        return changes.since(session, after, store_id=store_id)


def test_every_change_of_an_order_is_noted_in_order(worker: Worker) -> None:
    worker.receive("C-1", "order.created", T0, price=PRICE)
    worker.apply()
    [created] = noted(worker)
    assert (created.platform_order_id, created.store_id, created.order_id, created.kind) == (
        "C-1", STORE, None, changes.ORDER,
    )  # fmt: skip
    worker.receive("C-1", "order.accepted", T0 + 1)
    worker.apply()
    worker.now = T0 + HOLD_MS + 1
    worker.release("C-1")  # stored: its line's SKU maps to nothing, an anomaly too
    later = noted(worker, created.id)
    assert [row.kind for row in later] == [changes.ORDER, changes.ANOMALY, changes.ORDER]
    assert later[-1].order_id is not None
    assert later[1].order_id == later[-1].order_id, "the anomaly's change names its order"
    assert [row.id for row in later] == sorted(row.id for row in later)
    with worker.bridge.database.transaction() as session:
        assert changes.last_id(session) == later[-1].id
    assert changes.changed_orders(later) == [("testpay", "C-1")]


def test_a_duplicate_notes_nothing_and_stores_filter(worker: Worker) -> None:
    worker.receive("C-2", "order.created", T0)
    worker.apply()
    before = noted(worker)
    worker.receive("C-2", "order.created", T0)
    worker.apply()
    assert noted(worker) == before
    assert noted(worker, store_id="S002") == []
    assert [row.store_id for row in noted(worker, store_id=STORE)] == [STORE]


def test_an_action_s_end_is_noted_with_its_order_and_told_when_it_ended(
    database: Database,
) -> None:
    stored = platform_order("A-1", order={})
    with database.transaction() as session:
        wanted = [  # every order; another store's; another platform's; its own store's
            subscriptions.subscribe(
                session, url="https://pos.example.com/", secret="s" * 16, store_ids=stores,
                platforms=platforms, states=None, now_ms=T0,
            ).id
            for stores, platforms in [
                (None, None), (["S002"], None), (None, ["otherpay"]), (["S001"], ["testpay"])
            ]
        ]  # fmt: skip
        session.add(stored)
        session.flush()
        assert stored.order is not None
        action = outbound_action(
            1, actions.ActionStatus.PENDING, platform="testpay", platform_order_id="A-1",
            order_id=stored.order.id, attempts=1, in_flight_since_ms=T0,
        )  # fmt: skip
        session.add(action)
    with database.transaction() as session:
        done = ActionResult(outcome=ActionOutcome.DONE)
        ended = actions.record(
            session, action.id, done, started_ms=T0, now_ms=T0 + 5, retry_delay_ms=1000
        )
        assert ended is not None
        assert not ended.verified, "the platform's own answer, not read off the order"
    with database.transaction() as session:
        [noted] = changes.since(session, 0)
        told, told_too = session.execute(select(Delivery).order_by(Delivery.id)).scalars()
    assert [told.subscription_id, told_too.subscription_id] == [wanted[0], wanted[3]]
    assert (noted.kind, noted.platform_order_id, noted.order_id, noted.created_at_ms) == (
        changes.ACTION, "A-1", stored.order.id, T0 + 5,
    )  # fmt: skip
    assert (told.kind, told.order_id, told.created_at_ms) == (
        "action.outcome", stored.order.id, T0 + 5,
    )  # fmt: skip
    assert json.loads(told.body)["timestamp"] == T0 + 5


def test_the_changed_orders_come_in_the_order_of_their_last_change() -> None:
    rows = [
        changes.Noted(n, "testpay", order_id, STORE, None, changes.ORDER, T0)
        for n, order_id in enumerate(["B", "A", "C", "B"], 1)
    ]
    assert changes.changed_orders(rows) == [("testpay", "A"), ("testpay", "C"), ("testpay", "B")]


def test_the_changes_come_a_page_at_a_time(database: Database) -> None:
    many = [changes.Changed("testpay", f"P-{n}", STORE, None, changes.ORDER) for n in range(501)]
    with database.transaction() as session:
        changes.note(session, many, T0)
    with database.transaction() as session:
        page = changes.since(session, 0)
        assert [row.platform_order_id for row in page] == [f"P-{n}" for n in range(500)]
        assert len(changes.since(session, page[-1].id)) == 1

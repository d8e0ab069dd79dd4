"""The feed of committed changes the order board follows: every change of a platform order
(stored or not), an action's outcome and an anomaly is noted in the transaction that makes
it, in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sample_plugin import PRICE
from tests.test_hold import HOLD_MS, STORE, T0, Worker, working
from waimai_bridge.store import changes
from waimai_bridge.store.database import Database

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

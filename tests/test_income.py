"""Income after refunds (waimai_bridge/income.py): properties over any stated figures, and the
rule each order records."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.sample_plugin import PRICE
from tests.test_hold import HOLD_MS, T0, Worker, working
from waimai_bridge.income import IncomeRule, net_income
from waimai_bridge.models import OrderState
from waimai_bridge.store import anomalies as anomaly_store
from waimai_bridge.store.database import Database
from waimai_bridge.store.settlement import report
from waimai_bridge.store.tables import Order

FEN = st.integers(min_value=0, max_value=10**9)
STATES = st.sampled_from([state.value for state in OrderState])


@given(
    income=st.integers(-(10**9), 10**9), paid=FEN, refunded=FEN, state=STATES,
    restated=st.none() | st.integers(-(10**9), 10**9),
)  # fmt: skip
def test_net_income_never_exceeds_the_stated_income(
    income: int, paid: int, refunded: int, state: str, restated: int | None
) -> None:
    net, rule = net_income(
        merchant_income=income, user_paid=paid, refunded=refunded, state=state, restated=restated
    )
    assert net is not None
    assert net <= income
    if income >= 0 and rule is not IncomeRule.PLATFORM:
        assert net >= 0
    assert rule is not IncomeRule.UNSTATED


@given(income=FEN, paid=st.integers(1, 10**9), state=STATES)
def test_no_refund_keeps_the_stated_income_and_a_full_one_leaves_none(
    income: int, paid: int, state: str
) -> None:
    if state != OrderState.REFUNDED:
        assert net_income(merchant_income=income, user_paid=paid, refunded=0, state=state) == (
            income, IncomeRule.STATED,
        )  # fmt: skip
    full = net_income(merchant_income=income, user_paid=paid, refunded=paid, state="refunded")
    assert full == (0, IncomeRule.FULL_REFUND)


@given(income=FEN, paid=st.integers(1, 10**9), data=st.data())
def test_a_larger_refund_never_leaves_more_income(
    income: int, paid: int, data: st.DataObject
) -> None:
    small = data.draw(st.integers(0, paid))
    large = data.draw(st.integers(small, paid))
    state = OrderState.PARTIALLY_REFUNDED.value
    less, _ = net_income(merchant_income=income, user_paid=paid, refunded=large, state=state)
    more, _ = net_income(merchant_income=income, user_paid=paid, refunded=small, state=state)
    assert less is not None
    assert more is not None
    assert less <= more


def test_a_partial_refund_takes_its_share_rounded_half_up() -> None:
    # 1800 × 500 / 2600 = 346.15… → 346 fen less
    assert net_income(
        merchant_income=1800, user_paid=2600, refunded=500, state="partially_refunded"
    ) == (1454, IncomeRule.REFUND_SHARE)
    # 3 × 1 / 2 = 1.5 → 2 fen less
    assert net_income(merchant_income=3, user_paid=2, refunded=1, state="completed") == (
        1, IncomeRule.REFUND_SHARE,
    )  # fmt: skip


def test_an_unstated_income_stays_unknown() -> None:
    assert net_income(merchant_income=None, user_paid=100, refunded=50, state="refunded") == (
        None, IncomeRule.UNSTATED,
    )  # fmt: skip


def test_a_loss_stays_a_loss() -> None:
    assert net_income(merchant_income=-50, user_paid=100, refunded=100, state="refunded") == (
        -50, IncomeRule.FULL_REFUND,
    )  # fmt: skip


def test_an_order_s_income_follows_its_refunds_in_the_same_transaction(
    database: Database, tmp_path: Path
) -> None:
    with working(database, tmp_path) as worker:
        worker.receive("R-1", "order.created", T0, price=PRICE)
        worker.receive("R-1", "order.accepted", T0 + 1)
        worker.apply()
        worker.now = T0 + HOLD_MS + 1
        worker.release("R-1")
        assert income(worker) == (1800, "stated")
        worker.receive("R-1", "order.completed", T0 + 600_000)
        worker.receive("R-1", "refund.requested", T0 + 700_000)
        worker.receive("R-1", "refund.agreed", T0 + 800_000, partial=True, refund_fen=500)
        worker.apply()
        assert income(worker) == (1454, "refund_share")  # 1800 − 1800 × 500 / 2600
        worker.receive("R-1", "refund.requested", T0 + 900_000, key="second")
        worker.receive("R-1", "refund.agreed", T0 + 990_000, key="second-agreed")
        worker.apply()
        assert income(worker) == (0, "full_refund")


def income(worker: Worker) -> tuple[int | None, str | None]:
    with worker.bridge.database.transaction() as session:
        [row] = session.execute(select(Order.net_income_fen, Order.income_rule)).all()
    return row.net_income_fen, row.income_rule


def test_an_income_the_platform_states_after_a_refund_wins_and_a_different_one_is_flagged(
    database: Database, tmp_path: Path
) -> None:
    with working(database, tmp_path, "[anomalies]\ninterval_seconds = 0") as worker:
        worker.receive("P-1", "order.created", T0, price=PRICE)
        worker.receive("P-1", "order.accepted", T0 + 1)
        worker.apply()
        worker.now = T0 + HOLD_MS + 1
        worker.release("P-1")
        worker.receive("P-1", "order.completed", T0 + 600_000)
        worker.receive("P-1", "refund.requested", T0 + 700_000)
        worker.receive("P-1", "refund.agreed", T0 + 800_000, partial=True, refund_fen=500)
        worker.apply()
        assert income(worker) == (1454, "refund_share")
        restated = {**PRICE, "merchant_income": 1400}  # the order read again from the platform
        worker.receive("P-1", "order.completed", T0 + 900_000, key="read-again", price=restated)
        worker.apply()
        assert income(worker) == (1400, "platform")
        with worker.bridge.database.transaction() as session:
            [flagged] = anomaly_store.listing(session, rule="income_mismatch", limit=5)
        assert (
            flagged.detail == "the platform states 1400 fen after refunds; the rule gives 1454 fen"
        )
        day = datetime.fromtimestamp(T0 / 1000, ZoneInfo("Asia/Shanghai")).date()
        with worker.bridge.database.transaction() as session:
            settled = report(session, from_day=day, to_day=day, zones={})
        [row] = settled.rows  # the settlement marks it
        assert (row.sums.net_income, row.sums.mismatches) == (1400, 1)


def test_an_income_restated_as_the_rule_gives_is_not_flagged(
    database: Database, tmp_path: Path
) -> None:
    with working(database, tmp_path, "[anomalies]\ninterval_seconds = 0") as worker:
        worker.receive("P-2", "order.created", T0, price=PRICE)
        worker.receive("P-2", "order.accepted", T0 + 1)
        worker.apply()
        worker.now = T0 + HOLD_MS + 1
        worker.release("P-2")
        worker.receive("P-2", "refund.requested", T0 + 700_000)
        worker.receive("P-2", "refund.agreed", T0 + 800_000, partial=True, refund_fen=500)
        restated = {**PRICE, "merchant_income": 1454}
        worker.receive("P-2", "order.completed", T0 + 900_000, key="read-again", price=restated)
        worker.apply()
        assert income(worker) == (1454, "platform")
        with worker.bridge.database.transaction() as session:
            assert anomaly_store.listing(session, rule="income_mismatch", limit=5) == []

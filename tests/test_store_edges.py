"""Store edges the suite left open, on SQLite and PostgreSQL: two pulls of a store at once,
stuck orders of other platforms, a channel's renewals, consent and link states at their
bounds, an unsupported database, an order opened from a push put back in line, which due
holds a release takes, a lease two workers take at once, and an action two workers claim or
answer at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_mock_engine, select, text
from sqlalchemy.orm import Session

import tests.test_credentials_store as credentials
import tests.test_pulls_refetch as refetch
import tests.test_store as order_log
import tests.test_store_mutants as store_mutants
from tests.processes import wait_until
from waimai_bridge.models import ActionOutcome, ActionResult, Event, OrderState
from waimai_bridge.models import PlatformState as P
from waimai_bridge.store import actions, channels, inbox
from waimai_bridge.store import credentials as credential_store
from waimai_bridge.store.database import Database
from waimai_bridge.store.holds import Release, release_due
from waimai_bridge.store.leases import take_lease
from waimai_bridge.store.order_log import lock_orders
from waimai_bridge.store.pulls import pull_since, pulled
from waimai_bridge.store.tables import OutboundAction, PlatformOrder

# --------------------------------------------------------------------------- pulls


def test_two_pulls_of_a_store_at_once_never_move_its_cursor_back(database: Database) -> None:
    t0 = refetch.T0
    with database.transaction() as session:
        pulled(session, "testpay", "S1", since_ms=t0, now_ms=t0)

    def slower_pull() -> None:
        with database.transaction() as session:
            pulled(session, "testpay", "S1", since_ms=t0 + 200, now_ms=t0 + 2)

    worker = threading.Thread(target=slower_pull)
    with order_log.lock_waits(database) as waits, database.transaction() as session:
        pulled(session, "testpay", "S1", since_ms=t0 + 500, now_ms=t0 + 1)
        session.flush()  # the pull's transaction goes on writing what it pulled
        worker.start()
        wait_until(waits, 30, "the other pull waiting for the store's cursor")
    worker.join(timeout=30)
    assert not worker.is_alive()
    with database.transaction() as session:
        assert pull_since(session, "testpay", "S1") == t0 + 500


def test_a_stuck_order_of_a_platform_not_asked_for_is_not_read_again(database: Database) -> None:
    price, t0 = refetch.PRICE, refetch.T0
    refetch.add(database, "STUCK", price=price, updated=t0)
    refetch.add(database, "OTHER-STUCK", price=price, updated=t0, platform="otherpay")
    refetch.add(
        database, "OTHER-PREPARING", price=price, updated=t0, state=OrderState.PREPARING,
        order_updated=t0, platform="otherpay",
    )  # fmt: skip
    assert refetch.due(database) == [("STUCK", "stuck")]
    assert sorted(refetch.due(database, platforms=("otherpay",))) == [
        ("OTHER-PREPARING", "stuck"), ("OTHER-STUCK", "stuck"),
    ]  # fmt: skip


# --------------------------------------------------------------------------- credentials


def test_a_failed_renewal_backs_off_that_channel_alone(database: Database) -> None:
    credentials.saved(database, "testpay", "S1", credentials.TOKENS)
    credentials.saved(database, "otherpay", "S1", credentials.TOKENS)
    t0 = credentials.T0
    with database.transaction() as session:
        credential_store.renewal_failed(
            session, "testpay", "S1", "outage", now_ms=t0 + 1, retry_at_ms=t0 + 9
        )
    with database.transaction() as session:
        shown = {
            channel.platform: (channel.failures, channel.problem, channel.updated_at_ms)
            for channel in credential_store.listing(session, now_ms=t0 + 2, ahead_ms=0)
        }
        expiring = credential_store.due(
            session, now_ms=t0 + 2, ahead_ms=48 * credentials.HOUR, limit=9
        )
    assert shown == {"testpay": (1, "outage", t0 + 1), "otherpay": (0, None, t0)}
    assert expiring == [("otherpay", "S1")]  # the other channel is not waiting out a backoff


def test_a_channel_given_its_consent_back_is_renewed_without_waiting_out_an_old_backoff(
    database: Database,
) -> None:
    t0, hour = credentials.T0, credentials.HOUR
    credentials.saved(database, "testpay", "S1", credentials.TOKENS)
    with database.transaction() as session:
        credential_store.renewal_failed(
            session, "testpay", "S1", "outage", now_ms=t0, retry_at_ms=t0 + 9 * hour
        )
        assert credential_store.mark_unauthorized(session, "testpay", "S1", "withdrawn", now_ms=t0)
        assert credential_store.mark_authorized(session, "testpay", "S1", now_ms=t0 + 1)
        due = credential_store.due(session, now_ms=t0 + 2, ahead_ms=48 * hour, limit=9)
    assert due == [("testpay", "S1")]


def test_credentials_without_a_refresh_token_read_back_without_one(database: Database) -> None:
    no_refresh = credentials.TOKENS.model_copy(update={"refresh_token": None})
    credentials.saved(database, "testpay", "S1", no_refresh)
    found = credentials.read(database, "testpay", "S1")
    assert found is not None
    assert found.credentials == no_refresh


def test_a_link_state_expires_on_the_millisecond_its_lifetime_ends(database: Database) -> None:
    t0, age = credentials.T0, 15 * credentials.MINUTE
    with database.transaction() as session:
        late = credential_store.issue_state(session, "testpay", "S1", now_ms=t0)
        in_time = credential_store.issue_state(session, "testpay", "S2", now_ms=t0)
    with database.transaction() as session:
        assert (
            credential_store.use_state(session, "testpay", late, now_ms=t0 + age, max_age_ms=age)
            is None
        )
        assert (
            credential_store.use_state(
                session, "testpay", in_time, now_ms=t0 + age - 1, max_age_ms=age
            )
            == "S2"
        )


# --------------------------------------------------------------------------- channels


def test_setting_auto_accept_on_an_unsupported_database_names_the_supported_ones() -> None:
    engine = create_mock_engine("mysql://", lambda *_, **__: None)
    session = Session(bind=engine)  # type: ignore[arg-type]  # a dialect without a driver
    with pytest.raises(
        NotImplementedError, match=r"^database 'mysql' is not supported: postgresql, sqlite$"
    ):
        channels.set_auto_accept(session, "S1", "testpay", True, now_ms=refetch.T0)


# --------------------------------------------------------------------------- actions


def test_an_order_opened_from_the_inbox_dates_from_its_first_push_even_one_put_back_in_line(
    database: Database,
) -> None:
    first = store_mutants._pushed("NEW", 1, store="S001", inferred=False)
    second = store_mutants._pushed("NEW", 2, store="S002", inferred=False)
    with database.transaction() as session:
        recorded = inbox.record(session, [first, second], shard_of=lambda store: 0)
    [first_id] = [row.id for row in recorded if row.store_id == "S001"]
    with database.transaction() as session:  # the first push could not be applied: parked …
        inbox.take(session, 0, limit=1, now_ms=first[1], row_id=first_id)
        inbox.park(session, first_id, "cannot apply", first[1])
    with database.transaction() as session:  # … and put back in line after the second
        assert inbox.retry(session, first_id, 0) is not None
    with database.transaction() as session:
        assert actions.open_from_inbox(session, "sample", "NEW") is True
    with database.transaction() as session:
        opened = session.execute(select(PlatformOrder)).scalar_one()
    assert (opened.store_id, opened.created_at_ms) == ("S001", first[1])


# --------------------------------------------------------------------------- holds


def _held(database: Database, platform: str, order: str) -> None:
    """An order of ``platform`` accepted at ``T0`` by store S001, its hold begun."""
    item = order_log.event(P.ACCEPTED, 1, order=order).model_copy(update={"platform": platform})
    order_log.apply(
        database, Event.model_validate(item.model_dump()), order_log.T0, price=order_log.PRICE
    )


def _release_due(session: Session, limit: int) -> list[Release]:
    released = release_due(
        session, ["S001"], accept_hold_ms=order_log.HOLD_MS,
        now_ms=order_log.T0 + order_log.HOLD_MS, limit=limit,
    )  # fmt: skip
    return [outcome.outcome for outcome in released]


def _stored(database: Database, *orders: str) -> list[bool]:
    return [order_log.stored(database, order)[0] is not None for order in orders]


def test_due_holds_are_released_by_platform_then_order_up_to_the_limit(
    database: Database,
) -> None:
    _held(database, "beta", "A-1")
    _held(database, "alpha", "Z-9")
    _held(database, "alpha", "Z-1")
    with database.transaction() as session:
        assert _release_due(session, limit=1) == [Release.STORED]
    assert _stored(database, "Z-1", "Z-9", "A-1") == [True, False, False]
    with database.transaction() as session:
        assert _release_due(session, limit=1) == [Release.STORED]
    assert _stored(database, "Z-1", "Z-9", "A-1") == [True, True, False]


def test_a_release_of_due_holds_passes_over_the_orders_another_worker_holds(
    postgres_database: Database,
) -> None:
    database = postgres_database  # SQLite lets one writer at a time: nothing to pass over
    _held(database, "sample", "HELD-BY-WORKER")
    _held(database, "sample", "FREE")
    with database.transaction() as worker:
        assert lock_orders(worker, [("sample", "HELD-BY-WORKER")])
        with database.transaction() as session:
            session.execute(text("SET LOCAL lock_timeout = '5s'"))
            assert _release_due(session, limit=10) == [Release.STORED]
    assert _stored(database, "HELD-BY-WORKER", "FREE") == [False, True]


# --------------------------------------------------------------------------- leases


def test_a_lease_taken_while_another_worker_takes_it_waits_and_finds_it_held(
    database: Database,
) -> None:
    t0 = refetch.T0
    with database.transaction() as session:  # the lease exists, free
        assert take_lease(session, "job", "A", now_ms=t0, ttl_ms=1)
    found: list[bool] = []

    def other_worker() -> None:
        with database.transaction() as session:
            found.append(take_lease(session, "job", "B", now_ms=t0 + 10, ttl_ms=60_000))

    worker = threading.Thread(target=other_worker)
    with order_log.lock_waits(database) as waits, database.transaction() as session:
        assert take_lease(session, "job", "A", now_ms=t0 + 10, ttl_ms=60_000)
        session.flush()
        worker.start()
        wait_until(waits, 30, "the other worker waiting for the lease")
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert found == [False]


# --------------------------------------------------------------------------- actions


def pending_action(
    database: Database, *, attempts: int = 0, in_flight_since_ms: int | None = None
) -> int:
    row = store_mutants.outbound_action(
        1, actions.ActionStatus.PENDING, attempts=attempts, in_flight_since_ms=in_flight_since_ms,
        result_code=None, result_message=None,
    )  # fmt: skip
    with database.transaction() as session:
        session.add(row)
    return row.id


def test_an_action_two_workers_claim_at_once_is_called_by_one(database: Database) -> None:
    t0 = refetch.T0
    action_id = pending_action(database)
    found: list[actions.Step] = []

    def other_worker() -> None:
        with database.transaction() as session:
            claim = actions.claim(session, action_id, now_ms=t0, in_flight_timeout_ms=60_000)
            found.append(claim.step)

    worker = threading.Thread(target=other_worker)
    with order_log.lock_waits(database) as waits, database.transaction() as session:
        claim = actions.claim(session, action_id, now_ms=t0, in_flight_timeout_ms=60_000)
        assert claim.step is actions.Step.CALL
        session.flush()
        worker.start()
        wait_until(waits, 30, "the other worker waiting for the action")
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert found == [actions.Step.NOTHING], "in flight: left alone"
    with database.transaction() as session:
        gone = actions.claim(session, action_id + 1, now_ms=t0, in_flight_timeout_ms=60_000)
    assert gone.step is actions.Step.NOTHING


def test_an_answer_two_workers_record_at_once_is_kept_once(database: Database) -> None:
    t0 = refetch.T0
    action_id = pending_action(database, in_flight_since_ms=t0)
    done = ActionResult(outcome=ActionOutcome.DONE)
    found: list[bool] = []

    def record(session: Session) -> bool:
        kept = actions.record(session, action_id, done, started_ms=t0, now_ms=t0 + 5,
                              retry_delay_ms=1_000)  # fmt: skip
        return kept is not None

    def other_worker() -> None:
        with database.transaction() as session:
            found.append(record(session))

    worker = threading.Thread(target=other_worker)
    with order_log.lock_waits(database) as waits, database.transaction() as session:
        assert record(session)
        session.flush()
        worker.start()
        wait_until(waits, 30, "the other worker waiting for the action")
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert found == [False], "the attempt is no longer in flight"


def test_an_attempt_a_worker_left_in_flight_is_tried_again_after_the_timeout_or_fails_last(
    database: Database,
) -> None:
    t0, timeout = refetch.T0, 60_000
    action_id = pending_action(database, attempts=1, in_flight_since_ms=t0)

    def claim(now_ms: int) -> tuple[actions.Step, OutboundAction]:
        with database.transaction() as session:
            step = actions.claim(session, action_id, now_ms=now_ms, in_flight_timeout_ms=timeout)
            session.flush()
            row = session.get(OutboundAction, action_id)
            assert row is not None
            session.expunge(row)
        return step.step, row

    step, row = claim(t0 + timeout - 1)
    assert (step, row.attempts, row.result_code) == (actions.Step.NOTHING, 1, None)
    step, row = claim(t0 + timeout)
    assert (step, row.attempts, row.in_flight_since_ms) == (actions.Step.CALL, 2, t0 + timeout)
    assert (row.result_code, row.result_message) == (
        actions.UNKNOWN_OUTCOME, "the worker stopped during the platform call; tried again",
    )  # fmt: skip
    with database.transaction() as session:
        last = session.get(OutboundAction, action_id)
        assert last is not None
        last.attempt_limit = 2
    step, row = claim(t0 + 2 * timeout)
    assert (step, row.status, row.attempts, row.result_code) == (
        actions.Step.NOTHING, actions.ActionStatus.FAILED, 2, actions.UNKNOWN_OUTCOME,
    )  # fmt: skip
    assert row.result_message == (
        "the worker stopped during the last platform call, so whether the platform did it is "
        "unknown; check on the platform, then retry by hand if it did not"
    )

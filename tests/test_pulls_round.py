"""A round of pull compensation adds up what it found: the new events of its pulls and of
its fetches, each counted by platform and source; a fetch of an order the platform no
longer has finds nothing; a failed pull or fetch is logged where it failed and counted; a
verification that fails leaves its action unknown."""

from __future__ import annotations

import logging
import re

import pytest
from prometheus_client import REGISTRY

from tests.pullpay import NAME
from tests.sample_plugin import PRICE
from tests.test_pulls import Pulling
from tests.test_pulls import pulling as pulling  # the fixture
from waimai_bridge.models import Action, ActionOutcome
from waimai_bridge.pipeline.pulls import Puller
from waimai_bridge.store.tables import OutboundAction

PULLED = "waimai_pulled_events_total"


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def pulled(source: str, outcome: str) -> float:
    return count(PULLED, platform=NAME, source=source, outcome=outcome)


def test_a_round_adds_up_the_new_events_of_its_pulls_and_its_fetches(pulling: Pulling) -> None:
    full = pulling.body("c1", "F-1", "order.created", price=PRICE)
    pulling.platform.push(full, delivered=True)  # pushed, but the bridge never got it
    pulling.deliver(pulling.body("a1", "F-1", "order.accepted"))
    pulling.apply()
    pulling.platform.push(pulling.body("m1", "P-9", "order.created"), delivered=False)
    pulling.now += 60_001
    before = {
        (source, outcome): pulled(source, outcome)
        for source in ("pull", "fetch")
        for outcome in ("new", "duplicate")
    }
    done = pulling.bridge.puller.round()
    assert done is not None
    assert (done.pulled, done.fetched, done.new, done.failed) == (1, 2, 2, [])
    assert {key: pulled(*key) - value for key, value in before.items()} == {
        ("pull", "new"): 1,
        ("pull", "duplicate"): 0,
        ("fetch", "new"): 1,  # c1
        ("fetch", "duplicate"): 1,  # a1, pushed before
    }


def test_a_fetch_of_an_order_the_platform_does_not_have_finds_nothing(pulling: Pulling) -> None:
    pulling.deliver(pulling.body("a1", "N-1", "order.accepted"))  # never its full order
    pulling.apply()
    del pulling.platform.orders["N-1"]  # and the platform no longer has the order
    pulling.now += 60_001
    before = pulled("fetch", "new") + pulled("fetch", "duplicate")
    done = pulling.bridge.puller.refetch()
    assert pulling.platform.fetches == ["N-1"]
    assert (done.fetched, done.new, done.failed) == (0, 0, [])
    assert pulled("fetch", "new") + pulled("fetch", "duplicate") == before


def test_a_failed_pull_is_logged_where_it_failed_and_counted(
    pulling: Pulling, caplog: pytest.LogCaptureFixture
) -> None:
    pulling.platform.down = True
    before = count("waimai_pull_failures_total", platform=NAME, source="pull")
    caplog.set_level(logging.WARNING, logger="waimai_bridge.pipeline.pulls")
    done = pulling.bridge.puller.round()
    assert done is not None
    assert done.failed == [f"{NAME}/S001", f"{NAME}/S002"]
    assert count("waimai_pull_failures_total", platform=NAME, source="pull") - before == 2
    pulls = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pull of")]
    assert len(pulls) == 2
    for message, store in zip(pulls, ("S001", "S002"), strict=True):
        prefix = f"pull of {NAME} store {store} failed: TransientPlatformError at "
        assert message.startswith(prefix)
        assert message.removeprefix(prefix).split(":")[0].endswith("tests/pullpay.py")


def missing_full_order(pulling: Pulling, order: str) -> None:
    """``order`` pushed by the platform but its creation never reached the bridge."""
    pulling.platform.push(pulling.body(f"c-{order}", order, "order.created", price=PRICE),
                          delivered=True)  # fmt: skip
    pulling.deliver(pulling.body(f"a-{order}", order, "order.accepted"))


def test_an_order_missing_its_full_order_is_read_again_after_the_pull_interval(
    pulling: Pulling,
) -> None:
    missing_full_order(pulling, "F-1")
    missing_full_order(pulling, "F-2")
    pulling.apply()
    seen = pulling.now  # when F-2 was first seen, F-1 two seconds before
    pulling.now = seen + 60_000  # pull_interval_seconds = 60: F-2's push may still come
    pulling.bridge.puller.refetch()
    assert pulling.platform.fetches == ["F-1"]
    pulling.now += 1
    pulling.bridge.puller.refetch()
    assert pulling.platform.fetches == ["F-1", "F-2"]


def test_the_orders_read_again_in_a_round_add_up(pulling: Pulling) -> None:
    missing_full_order(pulling, "F-1")
    missing_full_order(pulling, "F-2")
    pulling.apply()
    pulling.now += 120_000
    done = pulling.bridge.puller.refetch()
    assert sorted(pulling.platform.fetches) == ["F-1", "F-2"]
    assert (done.fetched, done.new, done.failed) == (4, 2, [])  # each order's two, one new


def test_a_failed_fetch_is_that_orders_alone_logged_and_counted(
    pulling: Pulling, caplog: pytest.LogCaptureFixture
) -> None:
    missing_full_order(pulling, "F-1")
    pulling.apply()
    pulling.now += 60_001
    pulling.platform.down = True
    before = count("waimai_pull_failures_total", platform=NAME, source="fetch")
    caplog.set_level(logging.WARNING, logger="waimai_bridge.pipeline.pulls")
    done = pulling.bridge.puller.refetch()
    assert (done.fetched, done.new, done.failed) == (0, 0, [f"{NAME}/F-1"])
    assert count("waimai_pull_failures_total", platform=NAME, source="fetch") - before == 1
    [message] = [r.getMessage() for r in caplog.records]
    prefix = f"fetch of a {NAME} order failed: TransientPlatformError at "
    assert message.startswith(prefix)
    assert message.removeprefix(prefix).split(":")[0].endswith("tests/pullpay.py")


def test_a_pull_of_several_pages_adds_up_what_each_found(pulling: Pulling) -> None:
    for number in range(5):
        pulling.platform.push(pulling.body(f"k{number}", f"O-{number}", "order.created"),
                              delivered=False)  # fmt: skip
    pulling.deliver(pulling.body("k4", "O-4", "order.created"))  # one already pushed
    done = pulling.bridge.puller.pull_store(NAME, "S001")
    assert len(pulling.platform.pulls) == 3  # two a page
    assert (done.pulled, done.new) == (5, 4)


def test_a_verification_that_fails_leaves_the_action_unknown_and_says_where(
    pulling: Pulling, caplog: pytest.LogCaptureFixture
) -> None:
    pulling.deliver(pulling.body("c1", "V-1", "order.created", price=PRICE))
    pulling.apply()
    pulling.platform.outcome = ActionOutcome.UNKNOWN
    actions = pulling.bridge.actions
    asked = actions.ask(platform=NAME, platform_order_id="V-1", action=Action.CONFIRM,
                        reason=None, key="confirm-V-1")  # fmt: skip
    pulling.platform.verify_broken = True
    caplog.set_level(logging.ERROR, logger="waimai_bridge.pipeline.actions")
    verified = count("waimai_action_verifications_total", platform=NAME, outcome="unknown")
    retries = count("waimai_action_retries_total", platform=NAME, action="confirm")
    actions.perform(asked.action.id)  # the answer is lost, and reading the order fails
    assert count("waimai_action_verifications_total", platform=NAME, outcome="unknown") == (
        verified + 1
    )
    assert count("waimai_action_retries_total", platform=NAME, action="confirm") == retries + 1
    with pulling.bridge.database.transaction() as session:
        row = session.get(OutboundAction, asked.action.id)
        assert row is not None
        assert (row.status, row.attempts, row.verified) == ("pending", 1, False)
        assert (row.result_code, row.result_message) == (
            "VERIFY_ERROR", "verifying failed: KeyError"
        )  # fmt: skip
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert re.fullmatch(rf"action {asked.action.id}: the {NAME} plugin failed to verify it: "
                        r"KeyError at \S+/tests/pullpay\.py:\d+", record.getMessage())  # fmt: skip


def test_a_jobs_lease_lasts_two_intervals_and_a_minute_past_its_last_round(
    pulling: Pulling,
) -> None:
    other = Puller(pulling.bridge.pipeline, interval_s=60, refetch_after_ms=1_800_000)
    last = pulling.now
    assert pulling.bridge.puller.round() is not None
    pulling.now = last + 2 * 60_000 + 60_000 - 1
    assert other.round() is None, "the holder may still be at work"
    pulling.now += 1
    assert other.round() is not None, "the holder is gone: its lease ran out"


def test_an_action_is_counted_by_platform_action_and_outcome_and_a_gone_one_is_dropped(
    pulling: Pulling,
) -> None:
    pulling.deliver(pulling.body("c1", "M-1", "order.created", price=PRICE))
    pulling.apply()
    labels = {"platform": NAME, "action": "confirm"}
    before = (
        count("waimai_action_attempts_total", **labels, outcome="done"),
        count("waimai_actions_finished_total", **labels, status="done"),
    )
    actions = pulling.bridge.actions
    asked = actions.ask(platform=NAME, platform_order_id="M-1", action=Action.CONFIRM,
                        reason=None, key="confirm-M-1")  # fmt: skip
    actions.perform(asked.action.id)
    after = (
        count("waimai_action_attempts_total", **labels, outcome="done"),
        count("waimai_actions_finished_total", **labels, status="done"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    calls = len(pulling.platform.calls)
    actions.perform(asked.action.id + 1000)  # a message of an action that is not there
    assert len(pulling.platform.calls) == calls

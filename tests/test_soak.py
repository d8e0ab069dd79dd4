"""The fault soak's own checks (``bench/soak_checks.py``) fail when they should: an event
lost, applied twice or never ACKed, an order in the wrong state, an action the platform
acted on twice, a bridge that did not settle; and its order scripts send the service
steps only once the accept hold is over."""

from __future__ import annotations

import random
from dataclasses import replace

from bench.soak_checks import ActionRun, Observed, verdict
from bench.soak_load import Ask, script
from bench.soak_plan import ActionPlan, OrderPlan, Push


def good() -> Observed:
    """A run where everything went right: two orders, one confirmed, six events."""
    sent = frozenset({("p", f"k{n}") for n in range(6)})
    return Observed(
        sent=sent,
        acked=sent,
        applied=dict.fromkeys(sent, 1),
        expected={("p", "A"): "completed", ("p", "B"): None},
        states={("p", "A"): "completed", ("p", "B"): None},
        actions=[ActionRun("p", "A", "confirm", action_id=1, status="done", attempts=1)],
        calls={("p", "confirm"): 1},
        acts={("p", "confirm"): 1},
        unfinished=0,
        unsettled=0,
        refused=[],
    )


def test_a_run_where_everything_went_right_passes_with_its_figures() -> None:
    figures, problems = verdict(good())
    assert problems == []
    assert figures["events_sent"] == figures["events_acked"] == figures["events_applied"] == 6
    assert (figures["lost"], figures["applied_twice"], figures["unacked"]) == (0, 0, 0)
    assert figures["orders"] == 2
    assert figures["orders_wrong"] == 0
    assert figures["platform_calls_per_action"] == figures["platform_acts_per_action"] == 1.0


def test_an_acked_event_missing_from_the_event_log_is_lost() -> None:
    seen = good()
    applied = dict(seen.applied)
    del applied[("p", "k3")]
    figures, problems = verdict(replace(seen, applied=applied))
    assert figures["lost"] == 1
    assert figures["events_applied"] == 5
    assert problems == ["lost (ACKed, never applied): p event k3"]


def test_an_event_in_the_log_twice_is_applied_twice() -> None:
    seen = good()
    figures, problems = verdict(replace(seen, applied={**seen.applied, ("p", "k0"): 2}))
    assert figures["applied_twice"] == 1
    assert problems == ["applied twice: p event k0"]


def test_an_event_never_acked_fails_even_when_it_was_applied() -> None:
    seen = good()
    figures, problems = verdict(replace(seen, acked=seen.sent - {("p", "k5")}))
    assert figures["unacked"] == 1
    assert problems == ["never ACKed: p event k5"]


def test_an_order_not_in_its_expected_state_fails() -> None:
    seen = good()
    stored_after_all = {("p", "A"): "completed", ("p", "B"): "refunded"}
    figures, problems = verdict(replace(seen, states=stored_after_all))
    assert figures["orders_wrong"] == 1
    assert problems == ["wrong state: p B: expected never stored, got refunded"]
    _, problems = verdict(replace(seen, states={("p", "B"): None}))
    assert problems == ["wrong state: p A: expected completed, got not stored"]


def test_an_action_the_platform_acted_on_twice_fails_and_a_repeat_it_refused_does_not() -> None:
    seen = good()
    figures, problems = verdict(replace(seen, calls={("p", "confirm"): 2}))
    assert problems == []  # the second call was answered "already done": acted on once
    assert figures["platform_calls_per_action"] == 2.0
    assert figures["platform_acts_per_action"] == 1.0
    twice = replace(seen, calls={("p", "confirm"): 2}, acts={("p", "confirm"): 2})
    _, problems = verdict(twice)
    assert problems == ["p confirm: the platform acted 2 times for 1 actions (2 calls)"]


def test_an_action_not_done_and_a_bridge_not_settled_fail() -> None:
    seen = good()
    stuck = [ActionRun("p", "A", "confirm", action_id=1, status="pending", attempts=1)]
    _, problems = verdict(replace(seen, actions=stuck, unfinished=1, unsettled=3))
    assert problems == [
        "action confirm on p order A: pending",
        "1 orders did not finish their pushes and actions",
        "the bridge did not settle: 3 events, holds or actions",
    ]


def test_a_refused_action_fails_once_and_is_not_counted_as_owed_a_platform_call() -> None:
    seen = good()
    refused = ActionRun("p", "B", "confirm", status="refused", problem="HTTP 404 unknown")
    figures, problems = verdict(replace(seen, actions=[*seen.actions, refused]))
    assert problems == ["action confirm on p order B: refused (HTTP 404 unknown)"]
    assert figures["actions"] == 2


def test_a_refused_push_fails() -> None:
    _, problems = verdict(replace(good(), refused=["p A step 1: HTTP 400 bad"]))
    assert problems == ["push refused: p A step 1: HTTP 400 bad"]


def push(step: str) -> Push:
    return Push("p", "A", step, "POST", "/webhooks/p", step.encode(), {}, (step,))


def test_an_order_script_confirms_first_and_serves_only_after_the_hold() -> None:
    plan = OrderPlan(
        "p", "A", "S001", "a story", (push("created"), push("accepted")),
        (push("rider"), push("completed"), push("refund asked")),
        ActionPlan("agree_refund", "ok", (push("refund agreed"),)), "refunded", confirm=True,
    )  # fmt: skip
    stages = script(plan, 10.0, random.Random(1))
    steps = [step.step if isinstance(step, Push) else step.action for _, step in stages]
    assert steps == ["created", "confirm", "accepted", "rider", "completed", "refund asked",
                     "agree_refund", "refund agreed"]  # fmt: skip
    delays = [delay for delay, _ in stages]
    assert delays[3] >= 10.0 + 1.0  # the service waits out the hold
    assert all(delay < 10.0 for position, delay in enumerate(delays) if position != 3)
    asks = [step for _, step in stages if isinstance(step, Ask)]
    assert [(ask.action, ask.stored) for ask in asks] == [
        ("confirm", False),
        ("agree_refund", True),
    ]

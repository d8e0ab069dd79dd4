"""The soak's accounting: what the platforms sent and the chain asked, against what the
bridge's database holds at the end; the figures, and every check that failed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]
"""(platform, idempotency key) of an event; (platform, platform order id) of an order."""


@dataclass
class ActionRun:
    """How an order's action went, as the chain saw it."""

    platform: str
    platform_order_id: str
    action: str
    action_id: int | None = None
    status: str = "not asked"
    attempts: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class Observed:
    """What the soak saw: sent by the platforms and the chain, and found at the end."""

    sent: frozenset[Key]
    """Every event a platform sent at least once."""
    acked: frozenset[Key]
    """The events whose push got a 2xx at least once."""
    applied: Mapping[Key, int]
    """How many times each event is in the bridge's order event log."""
    expected: Mapping[Key, str | None]
    """Each order the soak started, and its state at the end (None: never stored)."""
    states: Mapping[Key, str | None]
    """Each order's state in the bridge at the end (None or absent: not stored)."""
    actions: Sequence[ActionRun]
    calls: Mapping[Key, int]
    """The fake platforms' calls received per (platform, action)."""
    acts: Mapping[Key, int]
    """Of those, the calls the platform acted on (the others it answered "already done")."""
    unfinished: int
    """Orders whose script (pushes, action) did not end within the soak's bounds."""
    unsettled: int
    """Inbox events, holds and actions still not done when the bridge was waited for (-1:
    its database could not be read)."""
    refused: Sequence[str]
    """Pushes the bridge answered with a 4xx: never expected of a good push."""


def verdict(seen: Observed) -> tuple[dict[str, Any], list[str]]:
    """The figures of a run, and a line for each check that failed (none: it passed)."""
    applied = {key for key, times in seen.applied.items() if times > 0 and key in seen.sent}
    lost = sorted(seen.acked - applied)
    twice = sorted(key for key, times in seen.applied.items() if times > 1)
    unacked = sorted(seen.sent - seen.acked)
    wrong = sorted(
        f"{platform} {order}: expected {expected or 'never stored'}, "
        f"got {seen.states.get((platform, order)) or 'not stored'}"
        for (platform, order), expected in seen.expected.items()
        if seen.states.get((platform, order)) != expected
    )
    asked: Counter[Key] = Counter(
        (run.platform, run.action) for run in seen.actions if run.action_id is not None
    )  # the actions the bridge took on (a refused one is a problem of its own, below)
    not_done = [run for run in seen.actions if run.status != "done"]
    calls, acts = sum(seen.calls.values()), sum(seen.acts.values())
    figures: dict[str, Any] = {
        "events_sent": len(seen.sent),
        "events_acked": len(seen.acked),
        "events_applied": len(applied),
        "lost": len(lost),
        "applied_twice": len(twice),
        "unacked": len(unacked),
        "orders": len(seen.expected),
        "orders_wrong": len(wrong),
        "actions": len(seen.actions),
        "actions_retried": sum(1 for run in seen.actions if run.attempts > 1),
        "platform_calls": calls,
        "platform_calls_per_action": round(calls / len(seen.actions), 3) if seen.actions else None,
        "platform_acts_per_action": round(acts / len(seen.actions), 3) if seen.actions else None,
    }
    problems = [f"lost (ACKed, never applied): {platform} event {key}" for platform, key in lost]
    problems += [f"applied twice: {platform} event {key}" for platform, key in twice]
    problems += [f"never ACKed: {platform} event {key}" for platform, key in unacked]
    problems += [f"wrong state: {line}" for line in wrong]
    problems += [f"push refused: {line}" for line in seen.refused]
    problems += [
        f"action {run.action} on {run.platform} order {run.platform_order_id}: {run.status}"
        + (f" ({run.problem})" if run.problem else "")
        for run in not_done
    ]
    for (platform, action), count in sorted(asked.items()):
        acted = seen.acts.get((platform, action), 0)
        if acted != count:
            problems.append(
                f"{platform} {action}: the platform acted {acted} times for {count} actions "
                f"({seen.calls.get((platform, action), 0)} calls)"
            )
    if seen.unfinished:
        problems.append(f"{seen.unfinished} orders did not finish their pushes and actions")
    if seen.unsettled:
        problems.append(f"the bridge did not settle: {seen.unsettled} events, holds or actions")
    return figures, problems

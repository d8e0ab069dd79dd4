"""The recovery suites, for plugins that declare the optional hooks: missed pushes pulled
with their push's keys and confirmed, orders fetched whole, actions verified — each
against the plugin's own fake, told which pushes it sent or failed to send."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from waimai_bridge.errors import PushRefused
from waimai_bridge.harness.actions import running_fake
from waimai_bridge.harness.cases import Case, calling, ended_with
from waimai_bridge.harness.fake import FakePlatform
from waimai_bridge.harness.fixtures import PushFixture
from waimai_bridge.harness.outcomes import Failed, Missing, NotApplicable
from waimai_bridge.harness.pushes import fixture_config
from waimai_bridge.harness.structure import declares
from waimai_bridge.harness.target import Target
from waimai_bridge.models import (
    ActionOutcome,
    Capability,
    NativeEvent,
    PluginConfig,
)
from waimai_bridge.pulled import (
    OrderRef,
    PullReceipt,
    PullRequest,
)

COMPARED = ("store_id", "platform_order_id", "native_code", "idempotency_key", "payload")
"""What a pulled event must share with the pushed one."""
MAX_PULLS = 50
"""Pulls in a row while the plugin says ``more``, before the harness calls it a loop."""


def _push(fixture: PushFixture, config: PluginConfig, target: Target) -> dict[str, Any]:
    """A push fixture's request as a fake is told of it."""
    inbound = fixture.request.inbound(target.name, config)
    return {
        "method": inbound.method,
        "url": inbound.url,
        "kind": inbound.kind,
        "query": [list(pair) for pair in inbound.query],
        "headers": dict(inbound.headers),
        "body": fixture.request.body,
    }


def _accepted(target: Target) -> dict[str, tuple[PushFixture, list[NativeEvent]]]:
    """The push fixtures the plugin accepts with events, and those events."""
    config = fixture_config(target)
    found = {}
    for name, fixture in target.fixtures.pushes.items():
        if fixture.expect.refused is not None or not fixture.expect.events:
            continue
        try:
            parsed = target.platform.parse_event(
                fixture.request.inbound(target.name, config), config
            )
        except PushRefused:
            continue
        if parsed is not None and parsed.events:
            found[name] = (fixture, list(parsed.events))
    return found


def _told(fake: FakePlatform, where: str, push: dict[str, Any], *, delivered: bool) -> None:
    told = getattr(fake, "pushed", None)
    if told is None:
        raise Missing(
            f"{where}: the fake has no pushed(push, delivered=...) (see "
            "docs/plugin-authors.md, 'The fake platform')"
        )
    told(push, delivered=delivered)


def _pull_all(target: Target, where: str, store: str, config: PluginConfig) -> list[Any]:
    """Every answer of pulls of ``store`` from the start, while the plugin says ``more``,
    each receipt confirmed."""
    answers = []
    for _ in range(MAX_PULLS):
        pull = PullRequest(store_id=store, since_ms=0)
        answer = calling(
            f"{where}: pull_events", partial(target.platform.pull_events, pull, config)
        )
        answers.append(answer)
        if answer.receipt is not None and declares(target, Capability.CONFIRM_PULL):
            receipt = PullReceipt(store_id=store, receipt=answer.receipt)
            calling(
                f"{where}: confirm_pull", partial(target.platform.confirm_pull, receipt, config)
            )
        if not answer.more:
            return answers
    raise Failed(f"{where}: pull_events still says more after {MAX_PULLS} pulls")


def _check_pull(target: Target, name: str, fixture: PushFixture, pushed: list[NativeEvent]) -> None:
    where = f"fixture {name}.json"
    with running_fake(target, where) as fake:
        config = fake.configure(fixture_config(target))
        fake.reset()
        _told(fake, where, _push(fixture, config, target), delivered=False)
        stores = sorted({event.store_id for event in pushed})
        pulled = [
            e for store in stores for a in _pull_all(target, where, store, config) for e in a.events
        ]
        again = [
            e for store in stores for a in _pull_all(target, where, store, config) for e in a.events
        ]
    keys = {event.idempotency_key: event for event in pulled}
    problems = []
    for index, event in enumerate(pushed):
        twin = keys.get(event.idempotency_key)
        if twin is None:
            problems.append(f"events[{index}] (key {event.idempotency_key!r}) was not pulled")
            continue
        for field in COMPARED:
            if getattr(twin, field) != getattr(event, field):
                problems.append(f"events[{index}].{field}: the pulled event's differs")
    if declares(target, Capability.CONFIRM_PULL):
        repeated = sorted({e.idempotency_key for e in again} & {e.idempotency_key for e in pushed})
        if repeated:
            problems.append(f"pulled again after confirm_pull: {repeated}")
    if problems:
        raise Failed("\n".join(f"{where}: {problem}" for problem in problems))


def pull_cases(target: Target) -> Iterator[Case]:
    """Each accepted push fixture, failed to push, comes back by ``pull_events`` with the
    very events the push gives, and not again once confirmed."""
    if declares(target, Capability.CONFIRM_PULL) and not declares(target, Capability.PULL_EVENTS):
        yield Case("pull", "confirm_pull", ended_with(Failed(
            "confirm_pull is declared without pull_events: it confirms what a pull took"
        )))  # fmt: skip
    yield from _per_push(target, "pull", Capability.PULL_EVENTS, "pulls nothing", _check_pull)


def _per_push(
    target: Target, suite: str, capability: Capability, nothing: str,
    check: Callable[[Target, str, PushFixture, list[NativeEvent]], None],
) -> Iterator[Case]:  # fmt: skip
    """A case of ``suite`` per accepted push fixture, where the plugin has ``capability``."""
    if not declares(target, capability):
        yield Case(suite, "(none)", ended_with(NotApplicable(f"the plugin {nothing}")))
        return
    accepted = _accepted(target)
    if not accepted:
        yield Case(suite, "(none)", ended_with(Missing(f"no accepted push fixture to {suite}")))
    for name, (fixture, events) in accepted.items():
        yield Case(suite, f"{name}.json", partial(check, target, name, fixture, events))


def _check_fetch(
    target: Target, name: str, fixture: PushFixture, pushed: list[NativeEvent]
) -> None:
    where = f"fixture {name}.json"
    order = OrderRef(store_id=pushed[0].store_id, platform_order_id=pushed[0].platform_order_id)
    with running_fake(target, where) as fake:
        config = fake.configure(fixture_config(target))
        fake.reset()
        _told(fake, where, _push(fixture, config, target), delivered=True)
        fetched = calling(
            f"{where}: fetch_order", partial(target.platform.fetch_order, order, config)
        )
        unknown = OrderRef(store_id=order.store_id, platform_order_id="harness-no-such-order")
        nothing = calling(
            f"{where}: fetch_order of an unknown order",
            partial(target.platform.fetch_order, unknown, config),
        )
    problems = []
    if fetched is None:
        states = [
            calling(f"{where}: map_state of events[{index}]",
                    partial(target.platform.map_state, event)).state
            for index, event in enumerate(pushed)
        ]  # fmt: skip
        if all(state is None for state in states):
            raise NotApplicable(f"{where}: the push tells of no order's state (nothing to fetch)")
        problems.append(f"fetch_order of order {order.platform_order_id!r} found nothing")
    else:
        for index, event in enumerate(fetched.events):
            calling(
                f"{where}: map_state of fetched events[{index}]",
                partial(target.platform.map_state, event),
            )
        if declares(target, Capability.PRICE_BREAKDOWN) and fixture.expect.price is not None:
            prices = [
                calling(
                    f"{where}: price_breakdown of fetched events[{index}]",
                    partial(target.platform.price_breakdown, event, config),
                )
                for index, event in enumerate(fetched.events)
            ]
            if not any(price is not None for price in prices):
                problems.append("no fetched event carries the order's prices")
    if nothing is not None:
        problems.append("fetch_order of an order the platform does not know gave events")
    if problems:
        raise Failed("\n".join(f"{where}: {problem}" for problem in problems))


def fetch_cases(target: Target) -> Iterator[Case]:
    """Each order a push fixture tells of is fetched back whole (its prices, where the push
    had them); an order the platform does not know is ``None``."""
    yield from _per_push(target, "fetch", Capability.FETCH_ORDER, "fetches no orders",
                         _check_fetch)  # fmt: skip


def _check_verify(target: Target, name: str) -> None:
    where = f"fixture {name}.json"
    fixture = target.fixtures.actions[name]
    with running_fake(target, where) as fake:
        config = fake.configure(fixture_config(target))
        fake.reset()
        before = calling(
            f"{where}: verify_action before the action",
            partial(target.platform.verify_action, fixture.action, config),
        )
        calling(
            f"{where}: outbound_action",
            partial(target.platform.outbound_action, fixture.action, config),
        )
        after = calling(
            f"{where}: verify_action after the action",
            partial(target.platform.verify_action, fixture.action, config),
        )
    problems = []
    if before.outcome is ActionOutcome.DONE:
        problems.append("before the action was performed, verify_action says done")
    if after.outcome is not ActionOutcome.DONE:
        problems.append(
            f"after the action was performed, verify_action says "
            f"{str(after.outcome)!r} ({after.code}: {after.message}), not done"
        )
    if problems:
        raise Failed("\n".join(f"{where}: {problem}" for problem in problems))


def verify_cases(target: Target) -> Iterator[Case]:
    """For each action fixture, ``verify_action`` does not say done before the action is
    performed on the fake, and says done after."""
    if not declares(target, Capability.VERIFY_ACTION):
        yield Case("verify", "(none)", ended_with(NotApplicable("the plugin verifies nothing")))
        return
    if not target.fixtures.actions:
        yield Case("verify", "(none)", ended_with(Missing("no action fixture to verify")))
    for name in target.fixtures.actions:
        yield Case("verify", f"{name}.json", partial(_check_verify, target, name))

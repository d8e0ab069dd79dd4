"""The push suites: each push fixture parsed, mapped and priced exactly as expected; every
declared mapping shown by a fixture; signatures checked; price invariants; scenarios folded
through the real state machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import ValidationError

from waimai_bridge.errors import BadSignature, PushRefused
from waimai_bridge.harness.cases import Case, calling, ended_with
from waimai_bridge.harness.compare import differences, shown
from waimai_bridge.harness.fixtures import PushFixture, RawRequest, ScenarioFixture, Step
from waimai_bridge.harness.invariants import INVARIANT_NAMES, broken
from waimai_bridge.harness.outcomes import Failed, Missing, NotApplicable
from waimai_bridge.harness.structure import declares
from waimai_bridge.harness.target import Target
from waimai_bridge.models import (
    Capability,
    Event,
    NativeEvent,
    PluginConfig,
    PriceBreakdown,
    StateChange,
)
from waimai_bridge.statemachine import LogEntry, OrderFold, fold

EVENT_FIELDS = ("store_id", "platform_order_id", "native_code", "idempotency_key",
                "platform_time_ms")  # fmt: skip
"""The fields of an event a push fixture states (any other field it names is compared too)."""


@dataclass
class PushResult:
    """What the plugin made of one push: the answer, the refusal, events, states, prices."""

    reply: dict[str, Any]
    refused: str | None = None
    events: list[NativeEvent] = field(default_factory=list)
    states: list[StateChange] = field(default_factory=list)
    prices: list[PriceBreakdown] = field(default_factory=list)


def fixture_config(target: Target) -> PluginConfig:
    """The fixtures' config, or :class:`Missing` (the config suite says more)."""
    if target.fixtures.config is None:
        raise Missing(f"no config.json in {target.fixtures.folder}")
    return target.fixtures.config


def _refusal_body(target: Target, exc: PushRefused) -> str:
    # what the web receiver sends for a refusal without a platform-shaped reply
    if exc.reply is not None:
        return exc.reply.body
    return json.dumps({"error": exc.message}, ensure_ascii=False, separators=(",", ":"))


def run_push(
    target: Target, where: str, request: RawRequest, body: str | None = None
) -> PushResult:
    """Parse (and, for the events, map and price) one push as the pipeline would."""
    config = fixture_config(target)
    platform = target.platform
    inbound = request.inbound(target.name, config, body)
    try:
        parsed = calling(
            f"{where}: parse_event", lambda: platform.parse_event(inbound, config), (PushRefused,)
        )
    except PushRefused as exc:
        return PushResult(
            reply={"status": exc.status, "body": _refusal_body(target, exc)},
            refused=type(exc).__name__,
        )
    if parsed is None:
        kind = f"/{request.kind}" if request.kind else ""
        message = (
            f"platform {target.name!r} has no push {request.method} /webhooks/{target.name}{kind}"
        )
        return PushResult(reply={"status": 404, "body": json.dumps({"error": message})})
    result = PushResult(reply={"status": parsed.reply.status, "body": parsed.reply.body},
                        events=list(parsed.events))  # fmt: skip
    for index, event in enumerate(parsed.events):
        if declares(target, Capability.MAP_STATE):
            result.states.append(
                calling(
                    f"{where}: map_state of events[{index}]", partial(platform.map_state, event)
                )
            )
        if declares(target, Capability.PRICE_BREAKDOWN):
            price = calling(
                f"{where}: price_breakdown of events[{index}]",
                partial(platform.price_breakdown, event, config),
            )
            if price is not None:
                result.prices.append(price)
    return result


def _normalised(
    model: type[StateChange] | type[PriceBreakdown], value: dict[str, Any], where: str
) -> Any:
    try:
        return model.model_validate(value).model_dump(mode="json")
    except ValidationError as exc:
        raise Failed(f"{where} is not a valid {model.__name__}: {exc.errors()[0]['msg']} at "
                     f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])}") from None  # fmt: skip


def _check_push(target: Target, name: str, fixture: PushFixture) -> None:
    where = f"fixture {name}.json"
    expect = fixture.expect
    result = run_push(target, where, fixture.request)
    expected: dict[str, Any] = {"reply": {"status": expect.reply.status}}
    actual: dict[str, Any] = {"reply": {"status": result.reply["status"]}}
    if expect.reply.body is not None:
        expected["reply"]["body"] = expect.reply.body
        actual["reply"]["body"] = result.reply["body"]
    if expect.refused is not None or result.refused is not None:
        expected["refused"], actual["refused"] = expect.refused, result.refused
    expected["events"] = expect.events
    actual["events"] = [
        event.model_dump(
            mode="json",
            include=set(expect.events[index]) if index < len(expect.events) else set(EVENT_FIELDS),
        )
        for index, event in enumerate(result.events)
    ]
    if declares(target, Capability.MAP_STATE):
        expected["states"] = [
            _normalised(StateChange, state, f"{where}: expect.states[{index}]")
            for index, state in enumerate(expect.states)
        ]
        actual["states"] = [state.model_dump(mode="json") for state in result.states]
    if declares(target, Capability.PRICE_BREAKDOWN):
        prices = [price.model_dump(mode="json") for price in result.prices]
        wanted = None if expect.price is None else _normalised(
            PriceBreakdown, expect.price, f"{where}: expect.price"
        )  # fmt: skip
        expected["price"] = wanted
        actual["price"] = prices[0] if len(prices) == 1 else (prices or None)
    problems = [f"{where}: {line}" for key in expected
                for line in differences(expected[key], actual[key], key)]  # fmt: skip
    if problems:
        raise Failed("\n".join(problems))


def push_cases(target: Target) -> Iterator[Case]:
    """Each push fixture produces exactly its expected reply, events, states and price."""
    if not declares(target, Capability.PARSE_EVENT):
        yield Case("push", "(none)", ended_with(NotApplicable("the plugin receives no pushes")))
        return
    pushes = target.fixtures.pushes
    if not pushes:
        yield Case("push", "(none)", ended_with(Missing(
            f"no push fixtures in {target.fixtures.folder}: record pushes of the platform, "
            "each with the reply, events, states and price it must give"
        )))  # fmt: skip
    for name, fixture in pushes.items():
        yield Case("push", f"{name}.json", partial(_check_push, target, name, fixture))


def coverage_cases(target: Target) -> Iterator[Case]:
    """Every (native code, baseline state) pair the manifest declares is shown by a push
    fixture, so no mapping goes untested."""
    if not declares(target, Capability.MAP_STATE):
        yield Case("coverage", "mappings", ended_with(NotApplicable("the plugin maps no events")))
        return

    def check() -> None:
        shown_pairs = {
            (str(event.get("native_code")), state.get("state"))
            for fixture in target.fixtures.pushes.values()
            for event, state in zip(fixture.expect.events, fixture.expect.states, strict=False)
        }
        missing = [
            f"{row.code} → {int(state)}"
            for row in target.platform.manifest.native_codes
            for state in row.maps_to
            if (row.code, int(state)) not in shown_pairs
        ]
        if missing:
            raise Missing(
                "no push fixture shows these declared mappings (native code → state): "
                + ", ".join(missing)
            )

    yield Case("coverage", "mappings", check)


# --------------------------------------------------------------------------- signatures


def _changed(text: str) -> str:
    """``text`` with its last letter or digit changed (to another of the same kind)."""
    for index in range(len(text) - 1, -1, -1):
        char = text[index]
        if char.isdigit():
            return text[:index] + str((int(char) + 1) % 10) + text[index + 1 :]
        if char.isascii() and char.isalpha():
            base = ord("a") if char.islower() else ord("A")
            return text[:index] + chr(base + (ord(char) - base + 1) % 26) + text[index + 1 :]
    return text + "0"


def _tampered(fixture: PushFixture) -> tuple[RawRequest, str] | None:
    """A copy of the push with one signed value changed, and what was changed."""
    request = fixture.request
    if fixture.tamper is not None:
        pairs = [(fixture.tamper.replace, fixture.tamper.with_)]
    else:
        values = [
            str(event[key])
            for event in fixture.expect.events
            for key in ("platform_order_id", "idempotency_key")
            if event.get(key)
        ]
        pairs = [(value, _changed(value)) for value in dict.fromkeys(values)]
    for old, new in pairs:
        what = f"{shown(old)} changed to {shown(new)}"
        if old in request.body:
            return request.model_copy(update={"body": request.body.replace(old, new, 1)}), what
        for index, (key, value) in enumerate(request.query):
            if old in value:
                query = list(request.query)
                query[index] = (key, value.replace(old, new, 1))
                return request.model_copy(update={"query": query}), f"query {key}: {what}"
    return None


def _check_signature(target: Target, name: str, fixture: PushFixture) -> None:
    where = f"fixture {name}.json"
    original = run_push(target, where, fixture.request)
    if original.refused is not None:
        raise Failed(f"{where}: the untampered push was refused ({original.refused}): "
                     f"{original.reply['body']}")  # fmt: skip
    tampered = _tampered(fixture)
    if tampered is None:
        raise Missing(
            f"{where}: the harness found no order id or idempotency key in the request to "
            'tamper with; add "tamper": {"replace": "<a signed value>", "with": "<another>"}'
        )
    request, what = tampered
    config = fixture_config(target)
    inbound = request.inbound(target.name, config)
    try:
        parsed = calling(
            f"{where} (tampered)",
            lambda: target.platform.parse_event(inbound, config),
            (PushRefused,),
        )
    except BadSignature:
        return
    except PushRefused as exc:
        raise Failed(
            f"{where}: a tampered copy ({what}) was refused with {type(exc).__name__} "
            f"({exc.message}); expected BadSignature: verify the signature first"
        ) from None
    outcome = "answered as not this platform's (None)" if parsed is None else "accepted"
    raise Failed(
        f"{where}: a tampered copy ({what}) was {outcome}; expected BadSignature: "
        "parse_event must verify the signature over every signed value"
    )


def signature_cases(target: Target) -> Iterator[Case]:
    """Each accepted push passes its signature check, and a tampered copy is refused."""
    if not declares(target, Capability.PARSE_EVENT):
        yield Case(
            "signature", "(none)", ended_with(NotApplicable("the plugin receives no pushes"))
        )
        return
    signed = {name: fixture for name, fixture in target.fixtures.pushes.items()
              if fixture.expect.events and fixture.expect.reply.status < 400}  # fmt: skip
    if not signed:
        yield Case("signature", "(none)", ended_with(Missing(
            "no push fixture carries events, so no signature can be checked"
        )))  # fmt: skip
    for name, fixture in signed.items():
        yield Case("signature", f"{name}.json",
                   partial(_check_signature, target, name, fixture))  # fmt: skip


# --------------------------------------------------------------------------- prices


def _check_price(target: Target, name: str, fixture: PushFixture) -> None:
    where = f"fixture {name}.json"
    waived = frozenset(fixture.expect.price_waivers)
    unknown = sorted(waived - INVARIANT_NAMES)
    if unknown:
        raise Failed(f"{where}: price_waivers names unknown invariants {unknown}; "
                     f"the invariants are {sorted(INVARIANT_NAMES)}")  # fmt: skip
    result = run_push(target, where, fixture.request)
    if not result.prices:
        raise Failed(f"{where}: price: expected a price breakdown, actual none")
    problems = [
        f"{where}: price.{field}: expected {expected}, actual {actual}"
        for price in result.prices
        for field, expected, actual in broken(price, waived)
    ]
    if problems:
        raise Failed("\n".join(problems))


def price_cases(target: Target) -> Iterator[Case]:
    """The price invariants hold on every price breakdown the fixtures produce."""
    if not declares(target, Capability.PRICE_BREAKDOWN):
        yield Case("price", "(none)", ended_with(NotApplicable("the plugin reads no prices")))
        return
    priced = {name: fixture for name, fixture in target.fixtures.pushes.items()
              if fixture.expect.price is not None}  # fmt: skip
    if not priced:
        yield Case("price", "(none)", ended_with(Missing(
            "no push fixture expects a price breakdown: record a new-order push and write "
            "the price it must give"
        )))  # fmt: skip
    for name, fixture in priced.items():
        yield Case("price", f"{name}.json", partial(_check_price, target, name, fixture))
        for invariant, reason in fixture.expect.price_waivers.items():
            yield Case("price", f"{name}.json waives {invariant}",
                       ended_with(NotApplicable(f"waived by the fixture: {reason}")))  # fmt: skip


# --------------------------------------------------------------------------- scenarios


def _folded(entries: list[LogEntry], user_paid: int | None) -> dict[str, Any]:
    order: OrderFold = fold(entries, user_paid_fen=user_paid)
    return {
        "state": None if order.order_state is None else str(order.order_state),
        "rider_state": None if order.rider_state is None else str(order.rider_state),
        "saved_state": None if order.saved_state is None else str(order.saved_state),
        "platform_state": None if order.platform_state is None else int(order.platform_state),
        "refunded_amount_fen": order.refunded_amount_fen,
    }


def _check_scenario(target: Target, name: str, scenario: ScenarioFixture) -> None:
    where = f"scenario {name}.json"
    events: list[Event] = []
    user_paid: int | None = None
    for number, step in enumerate(scenario.steps, start=1):
        if isinstance(step, Step):
            request, label = step.request, f"{where}, step {number}"
        else:
            pushed = target.fixtures.pushes.get(step)
            if pushed is None:
                raise Failed(f"{where}: step {number} names push fixture {step!r}, "
                             "which does not exist")  # fmt: skip
            request, label = pushed.request, f"{where}, step {number} ({step})"
        result = run_push(target, label, request)
        if result.refused is not None:
            raise Failed(f"{label}: the push was refused ({result.refused}): "
                         f"{result.reply['body']}")  # fmt: skip
        events += [
            Event.of(native, state)
            for native, state in zip(result.events, result.states, strict=True)
        ]
        if user_paid is None and result.prices:
            user_paid = result.prices[0].user_paid
    entries = [LogEntry.of(event, arrival) for arrival, event in enumerate(events)]
    actual = _folded(entries, user_paid)
    checked = {key: actual[key] for key in scenario.expect}
    problems = [f"{where}: {line}" for line in differences(scenario.expect, checked, "order")]
    if problems:
        raise Failed("\n".join(problems))
    late = len(entries)
    shuffled = [LogEntry.of(event, late - arrival) for arrival, event in enumerate(events)]
    repeated = [LogEntry.of(event, 2 * late + arrival) for arrival, event in enumerate(events)]
    again = _folded(shuffled + repeated, user_paid)
    if again != actual:
        raise Failed(
            f"{where}: the order depends on arrival order: in order {shown(actual)}, reversed "
            f"and repeated {shown(again)}; give each event the platform's own time of the "
            "change (platform_time_ms) and a stable idempotency key"
        )


def scenario_cases(target: Target) -> Iterator[Case]:
    """Each scenario's pushes fold through the real state machine into the expected order,
    whatever their arrival order and repeats."""
    if not declares(target, Capability.MAP_STATE):
        yield Case("scenario", "(none)", ended_with(NotApplicable("the plugin maps no events")))
        return
    scenarios = target.fixtures.scenarios
    if not scenarios:
        yield Case("scenario", "(none)", ended_with(Missing(
            "no scenario fixtures: write sequences of pushes (e.g. created, accepted, rider, "
            "completed; a cancel request and its answer) and the order state they end in"
        )))  # fmt: skip
    for name, scenario in scenarios.items():
        yield Case("scenario", f"{name}.json",
                   partial(_check_scenario, target, name, scenario))  # fmt: skip

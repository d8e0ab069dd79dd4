"""Every hook call is checked on the way in and out, with plugin, hook and JSON path named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sample_plugin import NAME, PRICE, SamplePlugin, native_event
from waimai_bridge import hookcalls
from waimai_bridge.errors import (
    BadSignature,
    ContractViolation,
    PlatformRejected,
    TransientPlatformError,
)
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import (
    Action,
    ActionOutcome,
    ActionRequest,
    Event,
    InboundRequest,
    NativeEvent,
    ParsedPush,
    PlatformState,
    PluginConfig,
    PriceBreakdown,
    Reply,
    StateChange,
)
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.validation import conform

CONFIG = PluginConfig(
    platform=NAME,
    public_base_url="https://bridge.example.com",
    settings={"secret": "s3cret-value"},
    stores={"S001": {"shop_id": 100001}, "S002": {"shop_id": "100002"}},
)


@pytest.fixture(params=[False, True], ids=["fast", "reference"])
def reference(request: pytest.FixtureRequest) -> bool:
    """Both checkers: the model on the hot path, plus the reference validator."""
    value: bool = request.param
    return value


def platform(reference: bool, **answers: Any) -> Platform:
    registry = PluginRegistry(reference=reference)
    registry.add(NAME, SamplePlugin(**answers))
    return registry.platform(NAME)


def request_for(body: dict[str, Any]) -> InboundRequest:
    return InboundRequest(
        method="POST",
        url="https://bridge.example.com/webhooks/sample",
        kind=None,
        query=[],
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
        received_at_ms=1_716_181_235_000,
    )


def violation(call: Any) -> str:
    with pytest.raises(ContractViolation) as caught:
        call()
    return str(caught.value)


def test_a_good_plugin_round_trips_every_hook(reference: bool) -> None:
    sample = platform(reference)
    parsed = sample.parse_event(request_for({"shop": "100001"}), CONFIG)
    assert parsed is not None
    assert parsed.reply == Reply(body='{"ok":true}')
    assert [event.store_id for event in parsed.events] == ["S001"]
    event = sample.event(parsed.events[0])
    assert isinstance(event, Event)
    assert event.state is PlatformState.CREATED
    assert event.idempotency_key == parsed.events[0].idempotency_key
    price = sample.price_breakdown(parsed.events[0], CONFIG)
    assert price == PriceBreakdown.model_validate(PRICE)
    action = ActionRequest(
        action_id="A1", action=Action.CONFIRM, platform_order_id="1", store_id="S001", attempt=1
    )
    assert sample.outbound_action(action, CONFIG).outcome is ActionOutcome.DONE


def test_store_ids_are_compared_as_strings() -> None:
    assert CONFIG.store_for("shop_id", "100001") == "S001"
    assert CONFIG.store_for("shop_id", 100002) == "S002"
    assert CONFIG.store_for("shop_id", "999") is None


def test_the_config_repr_hides_the_secrets() -> None:
    assert "s3cret-value" not in repr(CONFIG)
    assert "s3cret-value" not in str(CONFIG)


def test_an_output_breaking_the_schema_names_plugin_hook_and_path(reference: bool) -> None:
    bad = {**PRICE, "items": [{**PRICE["items"][0], "quantity": 0}]}
    sample = platform(reference, price_breakdown=lambda order, config: bad)
    assert violation(lambda: sample.price_breakdown(native_event(), CONFIG)) == (
        "plugin 'sample', hook 'price_breakdown', at $.items[0].quantity: "
        "Input should be greater than or equal to 1 (got 0)"
    )


def test_money_must_be_whole_fen(reference: bool) -> None:
    sample = platform(reference, price_breakdown=lambda order, config: {**PRICE, "user_paid": 26.5})
    assert "at $.user_paid: Input should be a valid integer" in violation(
        lambda: sample.price_breakdown(native_event(), CONFIG)
    )


def test_a_model_changed_after_validation_is_caught(reference: bool) -> None:
    def sneaky(order: NativeEvent, config: PluginConfig) -> PriceBreakdown:
        price = PriceBreakdown.model_validate(PRICE)
        object.__setattr__(price, "commission", -1)
        return price

    sample = platform(reference, price_breakdown=sneaky)
    assert "at $.commission: Input should be greater than or equal to 0" in violation(
        lambda: sample.price_breakdown(native_event(), CONFIG)
    )


def test_a_missing_field_is_named(reference: bool) -> None:
    incomplete = {key: value for key, value in PRICE.items() if key != "merchant_income"}
    sample = platform(reference, price_breakdown=lambda order, config: incomplete)
    assert violation(lambda: sample.price_breakdown(native_event(), CONFIG)) == (
        "plugin 'sample', hook 'price_breakdown', at $.merchant_income: Field required"
    )


def test_an_event_with_a_native_code_the_manifest_lacks_is_refused(reference: bool) -> None:
    def unknown_code(request: InboundRequest, config: PluginConfig) -> ParsedPush:
        return ParsedPush(reply=Reply(body="ok"), events=[native_event(native_code="99")])

    sample = platform(reference, parse_event=unknown_code)
    assert violation(lambda: sample.parse_event(request_for({}), CONFIG)) == (
        "plugin 'sample', hook 'parse_event', at $.events[0].native_code: "
        "'99' is not in the manifest's native_codes"
    )


def test_an_event_of_another_platform_is_refused(reference: bool) -> None:
    def foreign(request: InboundRequest, config: PluginConfig) -> ParsedPush:
        return ParsedPush(reply=Reply(body="ok"), events=[native_event(platform="other")])

    sample = platform(reference, parse_event=foreign)
    assert "at $.events[0].platform: 'other' is not this plugin's platform 'sample'" in violation(
        lambda: sample.parse_event(request_for({}), CONFIG)
    )


def test_a_state_the_manifest_does_not_declare_for_the_code_is_refused(reference: bool) -> None:
    sample = platform(reference, map_state=lambda event: StateChange(state=PlatformState.COMPLETED))
    assert violation(lambda: sample.map_state(native_event(native_code="refund"))) == (
        "plugin 'sample', hook 'map_state', at $.state: 18 is not among the states the "
        "manifest declares for native code 'refund' (30, 33)"
    )


def test_an_ignored_code_may_map_to_no_state(reference: bool) -> None:
    sample = platform(reference)
    assert sample.map_state(native_event(native_code="nudge")).state is None


def test_a_hook_that_must_answer_and_does_not_is_a_violation(reference: bool) -> None:
    sample = platform(reference, map_state=lambda event: None)
    assert violation(lambda: sample.map_state(native_event())) == (
        "plugin 'sample', hook 'map_state', at $: returned nothing; map_state must return a result"
    )


def test_an_optional_hook_may_answer_none(reference: bool) -> None:
    sample = platform(reference, parse_event=lambda request, config: None)
    assert sample.parse_event(request_for({}), CONFIG) is None


def test_a_bad_argument_is_refused_before_the_plugin_runs(reference: bool) -> None:
    calls: list[NativeEvent] = []
    sample = platform(reference, map_state=lambda event: calls.append(event))
    broken = NativeEvent.model_construct(**{**native_event().model_dump(), "platform_time_ms": -1})
    assert violation(lambda: sample.map_state(broken)) == (
        "plugin 'sample', hook 'map_state', at argument event: $.platform_time_ms: "
        "Input should be greater than or equal to 0 (got -1)"
    )
    assert calls == []


def test_an_argument_that_passed_is_not_checked_again_but_an_equal_one_is(
    reference: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = platform(reference)
    checked: list[type[Any]] = []

    def counted(model: type[Any], value: object, **how: Any) -> Any:
        checked.append(model)
        return conform(model, value, **how)

    monkeypatch.setattr(hookcalls, "conform", counted)
    event = native_event()
    sample.map_state(event)
    sample.price_breakdown(event, CONFIG)
    sample.price_breakdown(event, CONFIG)
    assert (checked.count(NativeEvent), checked.count(PluginConfig)) == (1, 1)

    broken = NativeEvent.model_construct(**{**event.model_dump(), "platform_time_ms": -1})
    assert "argument order: $.platform_time_ms" in violation(
        lambda: sample.price_breakdown(broken, CONFIG)
    )
    sample.price_breakdown(native_event(), CONFIG)
    assert checked.count(NativeEvent) == 3


def test_push_refusals_pass_through_untouched(reference: bool) -> None:
    def refuse(request: InboundRequest, config: PluginConfig) -> ParsedPush:
        raise BadSignature("signature does not match", reply=Reply(status=401, body="no"))

    sample = platform(reference, parse_event=refuse)
    with pytest.raises(BadSignature) as caught:
        sample.parse_event(request_for({}), CONFIG)
    assert caught.value.status == 401
    assert caught.value.reply == Reply(status=401, body="no")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (TransientPlatformError("rate limited", code="711"), ActionOutcome.TRANSIENT),
        (PlatformRejected("order state changed", code="808"), ActionOutcome.REJECTED),
    ],
)
def test_platform_errors_become_action_results(
    reference: bool, error: Exception, outcome: ActionOutcome
) -> None:
    def fail(action: ActionRequest, config: PluginConfig) -> None:
        raise error

    sample = platform(reference, outbound_action=fail)
    action = ActionRequest(
        action_id="A1", action=Action.CANCEL, platform_order_id="1", store_id="S001", attempt=2
    )
    result = sample.outbound_action(action, CONFIG)
    assert result.outcome is outcome
    assert result.code == getattr(error, "code", None)


def test_a_capability_the_plugin_lacks_cannot_be_called() -> None:
    class OnlyManifest:
        from waimai_bridge.plugin_api import hookimpl

        @hookimpl
        def plugin_manifest(self) -> dict[str, Any]:
            from tests.sample_plugin import manifest

            return manifest(capabilities=[], actions=[])

    registry = PluginRegistry()
    registry.add(NAME, OnlyManifest())
    with pytest.raises(NotImplementedError, match="plugin 'sample' does not implement map_state"):
        registry.platform(NAME).map_state(native_event())

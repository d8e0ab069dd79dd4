"""The action suites: every supported action becomes a request the plugin's own fake
accepts, and the platform's errors are classified as transient or final."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from waimai_bridge.harness.cases import Case, calling, ended_with
from waimai_bridge.harness.compare import differences
from waimai_bridge.harness.fake import FakePlatform
from waimai_bridge.harness.fixtures import ActionFixture, ErrorFixture
from waimai_bridge.harness.outcomes import Failed, Missing, NotApplicable
from waimai_bridge.harness.pushes import fixture_config
from waimai_bridge.harness.structure import declares
from waimai_bridge.harness.target import Target
from waimai_bridge.models import (
    ActionOutcome,
    ActionRequest,
    ActionResult,
    Capability,
    PluginConfig,
)


@contextmanager
def running_fake(target: Target, where: str) -> Iterator[FakePlatform]:
    """The plugin's fake, started (or :class:`Missing` when it has none)."""
    if target.fake is None:
        raise target.no_fake or Missing("no fake platform")
    try:
        manager = target.fake(fixture_config(target))
        fake = manager.__enter__()
    except NotImplementedError as exc:
        raise Missing(f"{target.package}.testing.fake_platform: {exc}") from None
    except Exception as exc:
        raise Failed(
            f"{where}: the fake platform did not start: {type(exc).__name__}: {exc}"
        ) from None
    try:
        yield fake
    finally:
        manager.__exit__(None, None, None)


def secrets(config: PluginConfig, schema: dict[str, Any]) -> list[str]:
    """The values of the settings the config schema marks ``writeOnly`` (secrets)."""
    properties = schema.get("properties", {})
    return [
        str(value)
        for key, value in config.settings.items()
        if isinstance(properties.get(key), dict) and properties[key].get("writeOnly") and value
    ]


def _perform(
    target: Target, where: str, action: ActionRequest, config: PluginConfig
) -> ActionResult:
    return calling(
        f"{where}: outbound_action", lambda: target.platform.outbound_action(action, config)
    )


def _check_action(target: Target, name: str, fixture: ActionFixture) -> None:
    where = f"fixture {name}.json"
    if fixture.action.action not in target.platform.manifest.actions:
        raise Failed(f"{where}: action {str(fixture.action.action)!r} is not among the "
                     "manifest's actions")  # fmt: skip
    expected_result = ActionResult.model_validate(fixture.expect.result).model_dump(mode="json")
    with running_fake(target, where) as fake:
        config = fake.configure(fixture_config(target))
        fake.reset()
        result = _perform(target, where, fixture.action, config)
        calls = fake.calls()
    problems = list(differences(expected_result, result.model_dump(mode="json"), "result"))
    if len(calls) != 1:
        problems.append(f"calls: expected 1 API call, actual {len(calls)}")
    else:
        call = calls[0]
        if call.get("signature_ok") is False:
            problems.append("calls[0].signature_ok: expected true, actual false "
                            "(the fake refused the request's signature)")  # fmt: skip
        expected = {"method": fixture.expect.method, "path": fixture.expect.path,
                    "params": fixture.expect.params}  # fmt: skip
        actual = {key: call.get(key) for key in expected}
        problems += differences(expected, actual, "calls[0]")
    if problems:
        raise Failed("\n".join(f"{where}: {problem}" for problem in problems))


def action_cases(target: Target) -> Iterator[Case]:
    """Each action fixture becomes exactly the expected API call, which the fake accepts;
    every action the manifest lists has a fixture."""
    if not declares(target, Capability.OUTBOUND_ACTION):
        yield Case("actions", "(none)", ended_with(NotApplicable("the plugin performs no actions")))
        return
    if target.fake is None:
        yield Case("actions", "fake", ended_with(target.no_fake or Missing("no fake platform")))
    fixtures = target.fixtures.actions
    covered = {fixture.action.action for fixture in fixtures.values()}
    for action in target.platform.manifest.actions:
        if action not in covered:
            yield Case("actions", str(action), ended_with(Missing(
                f"no action fixture for {str(action)!r}, which the manifest lists: write one "
                "with the API call it must become"
            )))  # fmt: skip
    for name, fixture in fixtures.items():
        yield Case("actions", f"{name}.json", partial(_check_action, target, name, fixture))


def _check_error(target: Target, name: str, fixture: ErrorFixture) -> None:
    where = f"fixture {name}.json"
    base = fixture_config(target)
    expected = fixture.expect.result
    with running_fake(target, where) as fake:
        pointed = fake.configure(base)
        config = pointed.model_copy(update={"settings": {**pointed.settings, **fixture.settings}})
        fake.reset()
        fake.script(fixture.answer)
        result = _perform(target, where, fixture.action, config)
    actual = result.model_dump(mode="json")
    problems = list(differences(expected, {key: actual.get(key) for key in expected}, "result"))
    if result.outcome is not ActionOutcome.DONE and not result.message:
        problems.append("result.message: expected the platform's message, actual none")
    leaked = [secret for secret in secrets(config, target.platform.manifest.config_schema)
              if secret in (result.message or "")]  # fmt: skip
    if leaked:
        problems.append("result.message: shows a secret setting (writeOnly in the config schema)")
    if problems:
        raise Failed("\n".join(f"{where}: {problem}" for problem in problems))


def _check_unreachable(target: Target) -> None:
    where = "an unreachable platform"
    config = fixture_config(target)
    fixture = next(iter(target.fixtures.actions.values()), None)
    if fixture is not None:
        action = fixture.action
    else:
        action = ActionRequest(
            action_id="harness-unreachable", action=target.platform.manifest.actions[0],
            platform_order_id="harness-unreachable", store_id=next(iter(config.stores)),
            attempt=1,
        )  # fmt: skip
    with running_fake(target, where) as fake:
        pointed = fake.configure(config)
    result = _perform(target, where, action, pointed)
    if result.outcome is not ActionOutcome.TRANSIENT:
        raise Failed(
            f"{where}: result.outcome: expected 'transient' (the fake was stopped, so the call "
            f"cannot connect), actual {str(result.outcome)!r} ({result.code}: {result.message})"
        )


def error_cases(target: Target) -> Iterator[Case]:
    """Each error fixture's platform answer is classified as expected; an unreachable
    platform is transient; transient and final errors each have a fixture."""
    if not declares(target, Capability.OUTBOUND_ACTION) or not target.platform.manifest.actions:
        yield Case("errors", "(none)", ended_with(NotApplicable("the plugin performs no actions")))
        return
    yield Case("errors", "unreachable", lambda: _check_unreachable(target))
    fixtures = target.fixtures.errors
    outcomes = {str(fixture.expect.result.get("outcome")) for fixture in fixtures.values()}
    for outcome, example in (
        ("transient", "a 5xx, a rate limit"),
        ("rejected", "a wrong order state"),
    ):
        if outcome not in outcomes:
            yield Case("errors", f"{outcome} answers", ended_with(Missing(
                f"no error fixture expects outcome {outcome!r}: script an answer of the "
                f"platform's ({example}) and the result it must give"
            )))  # fmt: skip
    for name, fixture in fixtures.items():
        yield Case("errors", f"{name}.json", partial(_check_error, target, name, fixture))

"""Plugins are found through entry points, checked against their contract, or refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Install
from tests.sample_plugin import MANIFEST, NAME, SamplePlugin, manifest
from waimai_bridge import hookspecs
from waimai_bridge.hookcalls import HOOK_CONTRACTS
from waimai_bridge.plugin_api import hookimpl
from waimai_bridge.plugins import (
    BLOCK_ENV,
    PluginRegistry,
    PluginStatus,
    UnknownPlatform,
    blocked_from_env,
)


def refused(plugin: object, name: str = NAME) -> str:
    report = PluginRegistry().add(name, plugin)
    assert report.status is PluginStatus.REFUSED, report
    assert report.problem is not None
    return report.problem


def test_a_valid_plugin_is_accepted() -> None:
    registry = PluginRegistry()
    report = registry.add(NAME, SamplePlugin())
    assert report.status is PluginStatus.VALID
    assert report.manifest is not None
    assert report.manifest.name == NAME
    assert registry.platform(NAME).manifest.actions == ["confirm", "cancel"]


@pytest.mark.parametrize(
    ("changed", "path", "problem"),
    [
        (manifest(display_name=...), "$.display_name", "Field required"),
        (manifest(capabilities=["parse_event", "fly"]), "$.capabilities[1]", '(got "fly")'),
        (manifest(name="Sample!"), "$.name", "should match pattern"),
        (manifest(contract_version="one"), "$.contract_version", "should match pattern"),
        (
            manifest(native_codes=[{"code": "x", "name": "x", "maps_to": [99]}]),
            "$.native_codes[0].maps_to[0]",
            "got 99",
        ),
        (manifest(colour="red"), "$.colour", "Extra inputs are not permitted"),
    ],
)
def test_a_manifest_that_breaks_its_schema_is_refused(
    changed: dict[str, Any], path: str, problem: str
) -> None:
    message = refused(SamplePlugin(changed))
    assert message.startswith(f"plugin 'sample', hook 'plugin_manifest', at {path}: ")
    assert problem in message


def _implements_only_manifest(changed: dict[str, Any]) -> object:
    class ManifestOnly:
        @hookimpl
        def plugin_manifest(self) -> dict[str, Any]:
            return changed

    return ManifestOnly()


@pytest.mark.parametrize(
    ("plugin", "path", "problem"),
    [
        (
            SamplePlugin(manifest(name="other")),
            "$.name",
            "'other' differs from the entry-point name 'sample'",
        ),
        (
            SamplePlugin(manifest(contract_version="2.0")),
            "$.contract_version",
            "2.0 is not supported",
        ),
        (
            SamplePlugin(manifest(contract_version="1.7")),
            "$.contract_version",
            "1.7 is not supported",
        ),
        (
            _implements_only_manifest(manifest()),
            "$.capabilities",
            "declares 'map_state' but does not implement that hook",
        ),
        (
            SamplePlugin(
                manifest(capabilities=["parse_event", "price_breakdown", "outbound_action"])
            ),
            "$.capabilities",
            "implements the hook 'map_state' but does not declare it",
        ),
        (
            _implements_only_manifest(manifest(capabilities=[])),
            "$.actions",
            "lists actions but does not implement outbound_action",
        ),
        (
            SamplePlugin(manifest(config_schema={"type": "objekt"})),
            "$.config_schema.type",
            "not a valid JSON Schema",
        ),
        (
            SamplePlugin(
                manifest(native_codes=[*MANIFEST["native_codes"], MANIFEST["native_codes"][0]])
            ),
            "$.native_codes[4].code",
            "'new' is listed twice",
        ),
        (
            SamplePlugin(manifest(native_codes=[])),
            "$.native_codes",
            "is empty, but the plugin parses or maps events",
        ),
    ],
)
def test_a_manifest_that_breaks_the_rules_is_refused(
    plugin: object, path: str, problem: str
) -> None:
    assert refused(plugin).startswith(
        f"plugin 'sample', hook 'plugin_manifest', at {path}: {problem}"
    )


def test_a_manifest_version_must_be_the_distributions() -> None:
    report = PluginRegistry().add(NAME, SamplePlugin(), distribution_version="2.0.0")
    assert report.problem == (
        "plugin 'sample', hook 'plugin_manifest', at $.version: '1.0.0' differs from the "
        "installed distribution's version '2.0.0'"
    )


def test_an_unknown_hook_is_refused_by_name() -> None:
    class Typo(SamplePlugin):
        @hookimpl
        def parse_events(self, request: object) -> None:
            return None

    message = refused(Typo())
    assert message == (
        "plugin 'sample': implements 'parse_events', which is not a hook spec; the hooks are "
        "plugin_manifest, parse_event, map_state, price_breakdown, order_details, "
        "outbound_action, pull_events, confirm_pull, fetch_order, verify_action, authorize_url, "
        "exchange_code, refresh_credentials"
    )


def test_a_hook_with_an_argument_the_spec_lacks_is_refused() -> None:
    class WrongArgument:
        @hookimpl
        def plugin_manifest(self) -> dict[str, Any]:
            return manifest(capabilities=["map_state"], actions=[])

        @hookimpl
        def map_state(self, evnt: object) -> None:
            return None

    message = refused(WrongArgument())
    assert message.startswith("plugin 'sample': cannot be registered: ")
    assert "evnt" in message


def test_a_plugin_without_a_manifest_is_refused() -> None:
    class NoManifest:
        @hookimpl
        def map_state(self, event: object) -> None:
            return None

    assert refused(NoManifest()) == "plugin 'sample': does not implement the hook 'plugin_manifest'"


def test_a_manifest_hook_that_raises_is_refused() -> None:
    class Raising:
        @hookimpl
        def plugin_manifest(self) -> dict[str, Any]:
            raise RuntimeError("boom")

    assert refused(Raising()) == "plugin 'sample': hook 'plugin_manifest' raised RuntimeError: boom"


def test_two_plugins_with_one_name_keep_the_first() -> None:
    registry = PluginRegistry()
    registry.add(NAME, SamplePlugin(), source="first-dist 1.0")
    second = registry.add(NAME, SamplePlugin(), source="second-dist 1.0")
    assert second.status is PluginStatus.REFUSED
    assert second.problem == "another plugin named 'sample' is already loaded from first-dist 1.0"
    assert [report.source for report in registry.reports] == ["first-dist 1.0"]


def test_unknown_platform_names_the_loaded_ones() -> None:
    registry = PluginRegistry()
    registry.add(NAME, SamplePlugin())
    with pytest.raises(UnknownPlatform, match="no platform plugin 'nope'; loaded: sample"):
        registry.platform("nope")


def test_hook_contracts_cover_exactly_the_hook_specs() -> None:
    specs = {
        name: function
        for name, function in vars(hookspecs).items()
        if getattr(function, f"{hookspecs.PROJECT_NAME}_spec", None) is not None
    }
    assert set(HOOK_CONTRACTS) == set(specs)
    for name, contract in HOOK_CONTRACTS.items():
        parameters = list(specs[name].__code__.co_varnames[: specs[name].__code__.co_argcount])
        assert [p for p in parameters if p != "platform"] == list(contract.arguments), name


# --------------------------------------------------------------------------- entry points

BROKEN_MANIFEST = """
    from waimai_bridge.plugin_api import hookimpl

    @hookimpl
    def plugin_manifest():
        return {"name": "broken", "version": "0.1.0", "contract_version": "1.0",
                "capabilities": [], "actions": [], "config_schema": {},
                "store_config_schema": {}, "native_codes": []}
"""

BROKEN_OUTPUT = """
    from waimai_bridge.plugin_api import hookimpl

    @hookimpl
    def plugin_manifest():
        return {"name": "badprice", "display_name": "Bad prices", "version": "0.1.0",
                "contract_version": "1.0", "capabilities": ["price_breakdown"], "actions": [],
                "config_schema": {}, "store_config_schema": {}, "native_codes": []}

    @hookimpl
    def price_breakdown(order):
        return {"items": [], "original_amount": 100, "packaging_fee": 0, "delivery_fee": 0,
                "merchant_discount": 0, "platform_discount": 0, "user_paid": -5,
                "commission": 0, "merchant_income": 95}
"""


def test_installed_plugins_are_discovered_and_the_broken_one_refused(install: Install) -> None:
    install("waimai-bridge-broken", "broken_plugin", BROKEN_MANIFEST, entry_point="broken")
    install("waimai-bridge-badprice", "badprice_plugin", BROKEN_OUTPUT, entry_point="badprice")
    install(
        "waimai-bridge-noimport", "noimport_plugin", "import not_a_module\n", entry_point="noimport"
    )
    registry = PluginRegistry.discover(blocked=())
    reports = {report.name: report for report in registry.reports}
    assert reports["broken"].status is PluginStatus.REFUSED
    assert reports["broken"].source == "waimai-bridge-broken 0.1.0"
    assert reports["broken"].problem == (
        "plugin 'broken', hook 'plugin_manifest', at $.display_name: Field required"
    )
    assert reports["noimport"].problem == (
        "cannot be imported: ModuleNotFoundError: No module named 'not_a_module'"
    )
    assert reports["badprice"].status is PluginStatus.VALID
    assert {"eleme", "meituan", "own_pos"} <= set(registry.platforms)


def test_an_installed_plugin_breaking_its_output_contract_fails_the_call(install: Install) -> None:
    from tests.sample_plugin import native_event
    from waimai_bridge.errors import ContractViolation
    from waimai_bridge.models import PluginConfig

    install("waimai-bridge-badprice", "badprice_plugin", BROKEN_OUTPUT, entry_point="badprice")
    platform = PluginRegistry.discover(blocked=()).platform("badprice")
    config = PluginConfig(platform="badprice", public_base_url="http://x", settings={}, stores={})
    with pytest.raises(ContractViolation) as caught:
        platform.price_breakdown(native_event(platform="badprice"), config)
    assert str(caught.value) == (
        "plugin 'badprice', hook 'price_breakdown', at $.user_paid: "
        "Input should be greater than or equal to 0 (got -5)"
    )


def test_the_environment_blocks_plugins_before_they_are_imported(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(
        "waimai-bridge-noimport",
        "noimport_plugin",
        "raise SystemExit('imported')\n",
        entry_point="noimport",
    )
    monkeypatch.setenv(BLOCK_ENV, " noimport , eleme,")
    assert blocked_from_env() == {"noimport", "eleme"}
    registry = PluginRegistry.discover()
    statuses = {report.name: report.status for report in registry.reports}
    assert statuses["noimport"] is PluginStatus.BLOCKED
    assert statuses["eleme"] is PluginStatus.BLOCKED
    assert "eleme" not in registry.platforms
    assert statuses["meituan"] is PluginStatus.VALID

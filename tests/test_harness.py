"""The contract harness fails broken plugins and broken fixtures with messages that name the
fixture, the field and the expected and actual values; strictness turns missing suites
into failures; the command reports every skip with its reason."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from waimai_bridge_eleme import plugin as eleme
from waimai_bridge_eleme.signing import compact_json, push_signature
from waimai_bridge_eleme.testing import fake_platform

from waimai_bridge.harness import Contract, Strictness
from waimai_bridge.harness.commands import contract as contract_command
from waimai_bridge.harness.outcomes import Outcome, Status
from waimai_bridge.models import (
    ActionRequest,
    ActionResult,
    InboundRequest,
    NativeEvent,
    OrderDetails,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    StateChange,
)
from waimai_bridge.plugin_api import (
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
    hookimpl,
)
from waimai_bridge.pulled import (
    Confirmed,
    FetchedOrder,
    OrderRef,
    PulledEvents,
    PullReceipt,
    PullRequest,
)

ELEME_FIXTURES = Path(str(resources.files("waimai_bridge_eleme") / "fixtures"))


class ElemeCopy:
    """The Eleme plugin's hooks, delegated; subclasses break one thing each."""

    def manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return manifest

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return self.manifest(eleme.plugin_manifest())

    @hookimpl
    def parse_event(self, request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
        return eleme.parse_event(request, config)

    @hookimpl
    def map_state(self, event: NativeEvent) -> StateChange:
        return eleme.map_state(event)

    @hookimpl
    def price_breakdown(self, order: NativeEvent) -> PriceBreakdown | None:
        return eleme.price_breakdown(order)

    @hookimpl
    def order_details(self, order: NativeEvent) -> OrderDetails | None:
        return eleme.order_details(order)

    @hookimpl
    def outbound_action(self, action: ActionRequest, config: PluginConfig) -> ActionResult:
        return eleme.outbound_action(action, config)

    @hookimpl
    def pull_events(self, pull: PullRequest, config: PluginConfig) -> PulledEvents:
        return eleme.pull_events(pull, config)

    @hookimpl
    def confirm_pull(self, receipt: PullReceipt, config: PluginConfig) -> Confirmed:
        return eleme.confirm_pull(receipt, config)

    @hookimpl
    def fetch_order(self, order: OrderRef, config: PluginConfig) -> FetchedOrder | None:
        return eleme.fetch_order(order, config)

    @hookimpl
    def verify_action(self, action: ActionRequest, config: PluginConfig) -> ActionResult:
        return eleme.verify_action(action, config)

    @hookimpl
    def authorize_url(
        self, request: AuthorizationRequest, config: PluginConfig
    ) -> AuthorizationStart:
        return eleme.authorize_url(request, config)

    @hookimpl
    def exchange_code(self, exchange: CodeExchange, config: PluginConfig) -> Credentials:
        return eleme.exchange_code(exchange, config)

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        return eleme.refresh_credentials(refresh, config)


def run(
    plugin: object,
    suites: list[str],
    *,
    fixtures: Path = ELEME_FIXTURES,
    strictness: Strictness = Strictness.HIGH,
) -> dict[str, Outcome]:
    contract = Contract("eleme", plugin=plugin, fixtures=fixtures, fake=fake_platform,
                        suites=suites)  # fmt: skip
    return {outcome.case: outcome for outcome in contract.run(strictness).outcomes}


def failed(outcomes: dict[str, Outcome]) -> dict[str, str]:
    return {case: o.message for case, o in outcomes.items() if o.status is Status.FAILED}


def test_the_unbroken_copy_passes_every_suite_that_needs_no_installation() -> None:
    outcomes = run(ElemeCopy(), ["native_codes", "config", "push", "coverage", "signature",
                                 "price", "scenario", "actions", "errors",
                                 "authorization"])  # fmt: skip
    assert failed(outcomes) == {}
    assert len(outcomes) > 80


def test_a_plugin_handed_over_in_process_is_not_installed() -> None:
    outcome = run(ElemeCopy(), ["manifest"])["manifest::entry point"]
    assert outcome.status is Status.FAILED
    assert "entry point" in outcome.message


class WrongMapping(ElemeCopy):
    """Maps 'cancel withdrawn' (21) to 'cancel rejected' (22), and declares so."""

    def manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        for row in manifest["native_codes"]:
            if row["code"] == "21":
                row["maps_to"] = [22]
        return manifest

    @hookimpl
    def map_state(self, event: NativeEvent) -> StateChange:
        change = eleme.map_state(event)
        if event.native_code == "21":
            return change.model_copy(update={"state": 22})
        return change


def test_a_wrong_mapping_fails_naming_fixture_field_expected_and_actual() -> None:
    problems = failed(run(WrongMapping(), ["push", "coverage", "scenario"]))
    assert problems["push::refund-21.json"] == (
        "fixture refund-21.json: states[0].state: expected 21, actual 22"
    )
    assert "21 → 22" in problems["coverage::mappings"]
    assert "scenario scenarios/cancel-withdrawn.json: order.platform_state: expected 21, " \
        "actual 22" in problems["scenario::scenarios/cancel-withdrawn.json"]  # fmt: skip


class Unbalanced(ElemeCopy):
    """Counts the delivery fee twice in the original amount."""

    @hookimpl
    def price_breakdown(self, order: NativeEvent) -> PriceBreakdown | None:
        price = eleme.price_breakdown(order)
        if price is None:
            return None
        return price.model_copy(
            update={"original_amount": price.original_amount + price.delivery_fee}
        )


def test_an_unbalanced_price_breakdown_fails_the_invariants() -> None:
    problems = failed(run(Unbalanced(), ["push", "price"]))
    assert problems["price::sample-order-created.json"] == (
        "fixture sample-order-created.json: price.original_amount: expected 4500 "
        "(Σ items unit_original × quantity 3800 + packaging_fee 200 + delivery_fee 500), "
        "actual 5000"
    )
    assert problems["push::sample-order-created.json"] == (
        "fixture sample-order-created.json: price.original_amount: expected 4500, actual 5000"
    )


class NoSignatureCheck(ElemeCopy):
    """Signs every push itself before reading it: accepts anything."""

    @hookimpl
    def parse_event(self, request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
        if request.body:
            envelope = json.loads(request.body)
            envelope["signature"] = push_signature(envelope, config.settings["app_secret"])
            request = request.model_copy(update={"body": compact_json(envelope).encode()})
        return eleme.parse_event(request, config)


def test_a_plugin_that_accepts_a_tampered_push_fails() -> None:
    problems = failed(run(NoSignatureCheck(), ["signature"]))
    assert problems["signature::status-12.json"] == (
        'fixture status-12.json: a tampered copy ("3084512398765432101" changed to '
        '"3084512398765432102") was accepted; expected BadSignature: parse_event must verify '
        "the signature over every signed value"
    )


class SilentCode(ElemeCopy):
    """Ignores the arbitration code 24 without saying why."""

    def manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        for row in manifest["native_codes"]:
            if row["code"] == "24":
                row["note"] = None
        return manifest


def test_an_ignored_code_needs_a_note() -> None:
    problems = failed(run(SilentCode(), ["native_codes"]))
    assert problems == {
        "native_codes::mapped or ignored": "native_codes[10] (code '24'): maps_to is empty but "
        "no note says why the code is ignored; map it to baseline states or add a note"
    }


# --------------------------------------------------------------------------- broken fixtures


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """A copy of the Eleme fixtures to break."""
    return Path(shutil.copytree(ELEME_FIXTURES, tmp_path / "fixtures"))


def edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def test_broken_fixture_expectations_fail_with_field_expected_and_actual(fixtures: Path) -> None:
    edit(fixtures / "status-18.json", lambda d: d["expect"]["states"][0].update(state=12))
    edit(fixtures / "status-18.json",
         lambda d: d["expect"]["events"][0].update(platform_time_ms=1))  # fmt: skip
    edit(fixtures / "action-cancel.json",
         lambda d: d["expect"]["params"].update(type="others"))  # fmt: skip
    edit(fixtures / "errors" / "dropped.json",
         lambda d: d["expect"]["result"].update(outcome="rejected"))  # fmt: skip
    edit(fixtures / "scenarios" / "completed.json", lambda d: d["expect"].update(state="ready"))
    (fixtures / "junk.json").write_text('{"hello": 1}', encoding="utf-8")
    problems = failed(run(ElemeCopy(), ["fixtures", "push", "actions", "errors", "scenario"],
                          fixtures=fixtures))  # fmt: skip
    assert problems == {
        "fixtures::junk.json": "fixture junk.json: not a fixture: a fixture has one of the keys "
        "'steps', 'answer', 'action', 'request'",
        "push::status-18.json": "fixture status-18.json: events[0].platform_time_ms: expected "
        "1, actual 1716181200000\nfixture status-18.json: states[0].state: expected 12, "
        "actual 18",
        "actions::action-cancel.json": "fixture action-cancel.json: calls[0].params.type: "
        'expected "others", actual "foodSoldOut"',
        "errors::errors/dropped.json": "fixture errors/dropped.json: result.outcome: expected "
        '"rejected", actual "unknown"',
        "scenario::scenarios/completed.json": "scenario scenarios/completed.json: order.state: "
        'expected "ready", actual "completed"',
    }


def test_strictness_high_fails_what_low_skips_and_every_skip_has_its_reason(
    fixtures: Path,
) -> None:
    shutil.rmtree(fixtures / "scenarios")
    shutil.rmtree(fixtures / "errors")
    for path in fixtures.glob("action-*reject*.json"):
        path.unlink()
    suites = ["scenario", "actions", "errors"]
    low = run(ElemeCopy(), suites, fixtures=fixtures, strictness=Strictness.LOW)
    high = run(ElemeCopy(), suites, fixtures=fixtures, strictness=Strictness.HIGH)
    missing = {
        "scenario::(none)": "no scenario fixtures",
        "actions::reject_cancel": "no action fixture for 'reject_cancel'",
        "actions::reject_refund": "no action fixture for 'reject_refund'",
        "errors::transient answers": "no error fixture expects outcome 'transient'",
        "errors::rejected answers": "no error fixture expects outcome 'rejected'",
    }
    skipped = {case: o.message for case, o in low.items() if o.status is Status.SKIPPED}
    assert set(skipped) == set(missing)
    assert set(failed(high)) == set(missing)
    for case, reason in missing.items():
        assert skipped[case].startswith("missing: ")
        assert reason in skipped[case]
        assert high[case].message.startswith("missing (strictness high): ")
    assert high["errors::unreachable"].status is Status.PASSED


def test_a_plugin_without_a_fake_fails_the_action_suites_at_high() -> None:
    contract = Contract("eleme", plugin=ElemeCopy(), fixtures=ELEME_FIXTURES,
                        suites=["actions", "errors"])  # fmt: skip
    outcomes = {o.case: o for o in contract.run(Strictness.HIGH).outcomes}
    assert "no fake platform: add tests.testing.fake_platform(config)" in (
        outcomes["actions::fake"].message
    )
    assert all(o.status is Status.FAILED for o in outcomes.values())


# --------------------------------------------------------------------------- the command


def test_the_command_passes_eleme_at_high() -> None:
    result = CliRunner().invoke(contract_command, ["eleme", "--strictness", "high"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "eleme: 162 passed, 0 failed, 0 skipped (strictness high)"
    )


def test_the_command_lists_failures_and_skips_with_their_reasons(fixtures: Path) -> None:
    shutil.rmtree(fixtures / "scenarios")
    edit(fixtures / "status-18.json", lambda d: d["expect"]["states"][0].update(state=12))
    result = CliRunner().invoke(contract_command, ["eleme", "--fixtures", str(fixtures)])
    assert result.exit_code == 1
    assert "FAILED   push::status-18.json\n" in result.output
    assert "fixture status-18.json: states[0].state: expected 12, actual 18" in result.output
    assert "SKIPPED  scenario::(none)\n         missing: no scenario fixtures" in result.output
    # the broken fixture no longer shows the mapping 18 → 18
    assert "SKIPPED  coverage::mappings\n         missing: no push fixture shows these " \
        "declared mappings (native code → state): 18 → 18" in result.output  # fmt: skip
    assert result.output.splitlines()[-1] == (
        "eleme: 153 passed, 1 failed, 2 skipped (strictness low)"
    )


def test_the_command_names_a_plugin_that_is_not_installed() -> None:
    result = CliRunner().invoke(contract_command, ["nosuchplatform"])
    assert result.exit_code == 1
    assert "no plugin 'nosuchplatform' is installed" in result.output


def test_the_command_refuses_an_unknown_suite() -> None:
    result = CliRunner().invoke(contract_command, ["eleme", "--suites", "push,nonsense"])
    assert result.exit_code == 2
    assert "unknown suites ['nonsense']" in result.output

"""The suites of the contract harness, in the order they run, and running them.

Structural suites need nothing but the installed plugin and its ``config.json``; the
others need fixtures (and the action and recovery suites a fake platform), but the
authorization suite, which needs only the ``config.json`` and the fake. A scaffold from
``waimai-bridge new-plugin`` passes the structural suites as generated.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path

from waimai_bridge.harness import actions, authorization, pushes, recovery, structure
from waimai_bridge.harness.cases import Case, fail_with
from waimai_bridge.harness.fake import FakeFactory
from waimai_bridge.harness.outcomes import (
    CheckEnded,
    Failed,
    Outcome,
    Report,
    Strictness,
    outcome_of,
)
from waimai_bridge.harness.target import NotLoaded, Target, load_target

SUITES: Mapping[str, Callable[[Target], Iterator[Case]]] = {
    "manifest": structure.manifest_cases,
    "hooks": structure.hook_cases,
    "native_codes": structure.native_code_cases,
    "config": structure.config_cases,
    "fixtures": structure.fixture_file_cases,
    "push": pushes.push_cases,
    "coverage": pushes.coverage_cases,
    "signature": pushes.signature_cases,
    "price": pushes.price_cases,
    "scenario": pushes.scenario_cases,
    "actions": actions.action_cases,
    "errors": actions.error_cases,
    "pull": recovery.pull_cases,
    "fetch": recovery.fetch_cases,
    "verify": recovery.verify_cases,
    "authorization": authorization.authorization_cases,
}
"""Every suite by name, in the order they run."""

STRUCTURAL = ("manifest", "hooks", "native_codes", "config")
"""The suites a fresh scaffold passes before any fixture is written."""


class Contract:
    """The checks of one plugin: loaded once, run case by case (by the CLI or pytest)."""

    def __init__(
        self,
        name: str,
        *,
        plugin: object | None = None,
        fixtures: str | Path | None = None,
        fake: FakeFactory | None = None,
        suites: Collection[str] | None = None,
    ) -> None:
        unknown = sorted(set(suites or ()) - set(SUITES))
        if unknown:
            raise ValueError(f"unknown suites {unknown}; the suites are {list(SUITES)}")
        self.name = name
        self.suites = [suite for suite in SUITES if suites is None or suite in suites]
        self.target: Target | None = None
        self.problem: str | None = None
        try:
            self.target = load_target(name, plugin=plugin, fixtures=fixtures, fake=fake)
        except NotLoaded as exc:
            self.problem = str(exc)

    @property
    def heading(self) -> str:
        """One line naming the plugin, its version and where its fixtures are."""
        if self.target is None:
            return f"contract of plugin {self.name!r}: not loaded"
        manifest = self.target.platform.manifest
        return (
            f"contract of {manifest.name} {manifest.version} (contracts "
            f"{manifest.contract_version}) from {self.target.source}; fixtures: "
            f"{self.target.fixtures.folder}"
        )

    def cases(self) -> list[Case]:
        """Every check, suite by suite."""
        if self.target is None:
            return [Case("manifest", "load", fail_with(self.problem or "not loaded"))]
        target = self.target
        return [case for suite in self.suites for case in SUITES[suite](target)]

    def run(self, strictness: Strictness, cases: Iterable[Case] | None = None) -> Report:
        """Run the checks (all by default) and report."""
        outcomes = [
            run_case(case, strictness) for case in (self.cases() if cases is None else cases)
        ]
        return Report(self.name, strictness, self.heading, outcomes)


def run_case(case: Case, strictness: Strictness) -> Outcome:
    """Run one check; whatever it raises becomes its outcome."""
    try:
        case.check()
    except CheckEnded as ended:
        return outcome_of(case.id, ended, strictness)
    except Exception as exc:  # a check must never take the run down
        failure = Failed(f"the check raised {type(exc).__name__}: {exc}")
        return outcome_of(case.id, failure, strictness)
    return outcome_of(case.id, None, strictness)

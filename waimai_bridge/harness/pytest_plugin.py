"""The harness as a pytest plugin (entry point ``pytest11``): the ``--contract-strictness``
option and the test classes :func:`waimai_bridge.harness.contract_suite` builds."""

from __future__ import annotations

import pytest

from waimai_bridge.harness.cases import Case
from waimai_bridge.harness.outcomes import Status, Strictness
from waimai_bridge.harness.suites import Contract, run_case

OPTION = "contract_strictness"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--contract-strictness``: overrides every contract suite's strictness."""
    parser.addoption(
        "--contract-strictness",
        dest=OPTION,
        choices=[str(level) for level in Strictness],
        default=None,
        help="strictness of waimai-bridge contract suites (default: each suite's own)",
    )


def build_suite(contract: Contract, strictness: Strictness) -> type:
    """A test class with one test per check of ``contract``."""
    cases = contract.cases()

    class ContractSuite:
        """The waimai-bridge contract of one plugin."""

        __waimai_contract__ = contract

        @pytest.mark.parametrize("case", cases, ids=[case.id for case in cases])
        def test_contract(self, case: Case, request: pytest.FixtureRequest) -> None:
            chosen = request.config.getoption(OPTION, default=None)
            outcome = run_case(case, Strictness(chosen) if chosen else strictness)
            if outcome.status is Status.SKIPPED:
                pytest.skip(outcome.message)
            if outcome.status is Status.FAILED:
                pytest.fail(outcome.message, pytrace=False)

    ContractSuite.__name__ = ContractSuite.__qualname__ = f"Contract_{contract.name}"
    return ContractSuite

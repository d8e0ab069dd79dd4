"""The contract harness: the standard suite a platform plugin must pass.

For plugin authors, one line in a test module::

    from waimai_bridge.harness import contract_suite

    TestMyPlatform = contract_suite("myplatform", strictness="high")

or, from a shell, ``waimai-bridge contract myplatform --strictness high``. What the suites
check, the fixture format and the fake-platform convention are in docs/plugin-authors.md.
"""

from __future__ import annotations

from pathlib import Path

from waimai_bridge.harness.fake import AuthorizingFake, FakeFactory, FakePlatform
from waimai_bridge.harness.outcomes import Report, Strictness
from waimai_bridge.harness.suites import STRUCTURAL, SUITES, Contract


def contract_suite(
    plugin: str,
    *,
    fixtures: str | Path | None = None,
    strictness: Strictness | str = Strictness.LOW,
    fake: FakeFactory | None = None,
    suites: list[str] | None = None,
    plugin_object: object | None = None,
) -> type:
    """A pytest test class running the contract of the plugin named ``plugin``: one test
    per check, named ``suite::case``.

    ``fixtures`` defaults to the ``fixtures`` folder of the plugin's package (a relative
    path is taken from the current directory); ``fake`` to ``PKG.testing.fake_platform``;
    ``suites`` to all of them; ``plugin_object`` registers that object under ``plugin``
    instead of loading the installed entry point. ``pytest --contract-strictness=high``
    overrides ``strictness``.
    """
    from waimai_bridge.harness.pytest_plugin import build_suite

    contract = Contract(plugin, plugin=plugin_object, fixtures=fixtures, fake=fake, suites=suites)
    return build_suite(contract, Strictness(strictness))


def run_contract(
    plugin: str,
    *,
    strictness: Strictness | str = Strictness.LOW,
    fixtures: str | Path | None = None,
    suites: list[str] | None = None,
) -> Report:
    """Run the contract of an installed plugin and report (what ``waimai-bridge contract``
    prints)."""
    contract = Contract(plugin, fixtures=fixtures, suites=suites)
    return contract.run(Strictness(strictness))


__all__ = [
    "STRUCTURAL",
    "SUITES",
    "AuthorizingFake",
    "Contract",
    "FakeFactory",
    "FakePlatform",
    "Report",
    "Strictness",
    "contract_suite",
    "run_contract",
]

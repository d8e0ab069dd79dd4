"""The harness's commands: ``waimai-bridge contract PLUGIN`` and ``waimai-bridge new-plugin
NAME`` (registered on the main CLI)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from waimai_bridge.harness.outcomes import Strictness
from waimai_bridge.harness.scaffold import ScaffoldError, placeholders, scaffold
from waimai_bridge.harness.suites import STRUCTURAL, SUITES, Contract


def _suite_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [suite for suite in chosen if suite not in SUITES]
    if unknown:
        raise click.BadParameter(
            f"unknown suites {unknown}; the suites are {', '.join(SUITES)}", param_hint="--suites"
        )
    return chosen


@click.command("contract")
@click.argument("plugin")
@click.option(
    "--strictness",
    type=click.Choice([str(level) for level in Strictness]),
    default=str(Strictness.LOW),
    show_default=True,
    help="high: a suite with nothing to check (no fixtures, no fake) fails instead of skipping.",
)
@click.option(
    "--fixtures",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Fixture folder (default: the plugin package's fixtures/).",
)
@click.option(
    "--suites", default=None, help=f"Comma-separated suites to run ({', '.join(SUITES)})."
)
@click.option("-v", "--verbose", is_flag=True, help="List the passed checks too.")
def contract(
    plugin: str, strictness: str, fixtures: Path | None, suites: str | None, verbose: bool
) -> None:
    """Run the contract harness on an installed PLUGIN; exits 1 when a check fails.

    Every skip is listed with its reason.
    """
    chosen = _suite_list(suites)
    report = Contract(plugin, fixtures=fixtures, suites=chosen).run(Strictness(strictness))
    for line in report.lines(verbose=verbose):
        click.echo(line)
    sys.exit(0 if report.passed else 1)


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the package (default: ./waimai-bridge-NAME).",
)
@click.option("--display-name", default=None, help="The platform's name for people.")
def new_plugin(name: str, directory: Path | None, display_name: str | None) -> None:
    """Scaffold a platform plugin package NAME that passes the structural contract suites.

    The hooks, the fake platform and the fixtures are left for the author: the contract
    at strictness high names each of them with what to fill in.
    """
    try:
        values = placeholders(name, display_name)
        folder = directory or Path(values["distribution"])
        written = scaffold(name, folder, display_name)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"created {path}")
    click.echo(
        f"\nnext: cd {folder} && pip install -e '.[test]'\n"
        f"      waimai-bridge contract {name} --suites {','.join(STRUCTURAL)}   # passes now\n"
        f"      waimai-bridge contract {name} --strictness high   # what is left to fill in"
    )

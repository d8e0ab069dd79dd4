"""The kill rates of the last ``make mutation`` run, per module and per area, against targets.

Reads the results mutmut keeps beside each mutated module (``mutants/<path>.meta``), or
without them the recorded outcomes (``scripts/mutation-results.json``), prints
one table per module and one per area (``statemachine.py``, ``money.py``,
``action_rules.py``, ``store/``, ``pipeline/``) with the surviving mutants listed under it,
and exits 1 when an area that was run kills fewer than its target, 2 when there are no
results at all. An area none of whose mutants was run (``make mutation MUTATE=...``
narrowed the run) is shown as not run and judged by nobody.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mutmut.stats import status_by_exit_code

from scripts.mutation_results import RECORD

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "waimai_bridge/"

AREAS: dict[str, tuple[str, float]] = {
    "statemachine.py": ("waimai_bridge/statemachine.py", 90.0),
    "money.py": ("waimai_bridge/money.py", 90.0),
    "action_rules.py": ("waimai_bridge/action_rules.py", 90.0),
    "store/": ("waimai_bridge/store/", 80.0),
    "pipeline/": ("waimai_bridge/pipeline/", 80.0),
}
"""Area name → (path prefix of its modules, the percentage of its mutants to kill)."""

DETECTED = frozenset({"killed", "timeout", "segfault", "caught by type check"})
"""What counts as a killed mutant: a test failed, hung (mutmut stops it on a CPU or wall
clock limit, reported as timeout or, after the hard limit, segfault) or mypy refused it."""
NOT_RUN = frozenset({"not checked", "skipped"})
"""Mutants outside the rate: never run (a narrowed run) or excluded by a pragma."""


@dataclass
class Tally:
    """The outcomes of one module's or one area's mutants."""

    statuses: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)

    def add(self, name: str, status: str) -> None:
        """Count one mutant."""
        self.statuses[status] += 1
        if status not in DETECTED and status not in NOT_RUN:
            self.survivors.append(f"{name}: {status}")

    def merge(self, other: Tally) -> None:
        """Count another tally's mutants as well."""
        self.statuses.update(other.statuses)
        self.survivors.extend(other.survivors)

    @property
    def run(self) -> int:
        """Mutants that were run."""
        return sum(n for status, n in self.statuses.items() if status not in NOT_RUN)

    @property
    def killed(self) -> int:
        """Mutants some test noticed."""
        return sum(n for status, n in self.statuses.items() if status in DETECTED)

    @property
    def rate(self) -> float | None:
        """The percentage of the mutants run that were killed; None when none was run."""
        return 100.0 * self.killed / self.run if self.run else None


def read_results(mutants: Path) -> dict[str, Tally]:
    """Module path (``waimai_bridge/money.py``) → the outcomes of its mutants."""
    tallies: dict[str, Tally] = {}
    for meta in sorted(mutants.glob(f"{PACKAGE}**/*.py.meta")):
        module = meta.relative_to(mutants).as_posix().removesuffix(".meta")
        results = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        tally = tallies.setdefault(module, Tally())
        for name, exit_code in sorted(results.items()):
            tally.add(name, status_by_exit_code[exit_code])
    return tallies


def read_record(record: Path) -> dict[str, Tally]:
    """The same, from the recorded outcomes (:mod:`scripts.mutation_results`)."""
    tallies: dict[str, Tally] = {}
    kept = json.loads(record.read_text("utf-8")) if record.exists() else {}
    for module, data in sorted(kept.items()):
        tally = tallies.setdefault(module, Tally())
        for name, exit_code in sorted(data["outcomes"].items()):
            tally.add(name, status_by_exit_code[exit_code])
        tally.statuses["not checked"] += data["mutants"] - len(data["outcomes"])
    return tallies


def _row(name: str, tally: Tally, target: str = "") -> str:
    rate = "not run" if tally.rate is None else f"{tally.rate:.1f}%"
    survived = tally.run - tally.killed
    mutants = sum(tally.statuses.values())
    return (
        f"{name:<44} {mutants:>7} {tally.run:>6} {tally.killed:>7} {survived:>9} {rate:>8}"
        f" {target:>7}"
    )


def _header(title: str) -> str:
    return (
        f"{title:<44} {'mutants':>7} {'run':>6} {'killed':>7} {'survived':>9} {'rate':>8}"
        f" {'target':>7}"
    )


def report(tallies: dict[str, Tally], *, out: list[str]) -> bool:
    """Write the tables to ``out``; whether every area that was run meets its target."""
    out.append(_header("module"))
    for module, tally in sorted(tallies.items()):
        if tally.run:
            out.append(_row(module, tally))
    out.append("")
    out.append(_header("area"))
    met = True
    survivors: list[str] = []
    for area, (prefix, target) in AREAS.items():
        total = Tally()
        for module, tally in tallies.items():
            if module == prefix or (prefix.endswith("/") and module.startswith(prefix)):
                total.merge(tally)
        under = total.rate is not None and total.rate < target
        met = met and not under
        verdict = " UNDER TARGET" if under else ""
        out.append(_row(area, total, f"{target:.0f}%") + verdict)
        survivors += total.survivors
    if survivors:
        out.append("")
        out.append("surviving mutants (`mutmut show NAME` shows one):")
        out += [f"  {line}" for line in survivors]
    return met


def main(argv: list[str] | None = None) -> int:
    """Print the report of ``mutants/``; the exit status says whether the targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mutants", type=Path, default=ROOT / "mutants", help="mutmut's output folder"
    )
    parser.add_argument("--record", type=Path, default=RECORD, help="the recorded outcomes")
    options = parser.parse_args(argv)
    tallies = read_results(options.mutants) or read_record(options.record)
    if not any(tally.run for tally in tallies.values()):
        print(f"no mutation results in {options.mutants} nor {options.record}: run `make mutation`")
        return 2
    lines: list[str] = []
    met = report(tallies, out=lines)
    print("\n".join(lines))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""mutmut's results kept in the repository, so that ``make mutation`` goes on where the last
run stopped, on any checkout.

``save`` writes ``scripts/mutation-results.json`` from ``mutants/``: for each mutated module,
how many mutants it has, the hash mutmut keeps of each of its functions, and the outcome
(mutmut's exit code) of each of its mutants that was run. ``restore`` writes them back as
mutmut's ``mutants/<module>.meta`` files, where ``mutants/`` has none: mutmut then keeps an
outcome while its function's hash is unchanged, and runs the mutants of new or changed
functions.

An outcome holds for the tests of its run: a test added later may kill a recorded survivor,
which ``make mutation MUTATION_FRESH=1`` (everything again) finds out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "scripts" / "mutation-results.json"
PACKAGE = "waimai_bridge/"


def save(mutants: Path, record: Path) -> int:
    """Record the outcomes in ``mutants/``, keeping those of modules it holds none of (and
    that still exist); the number of outcomes recorded."""
    kept = json.loads(record.read_text("utf-8")) if record.exists() else {}
    kept = {module: data for module, data in kept.items() if (ROOT / module).exists()}
    for meta in sorted(mutants.glob(f"{PACKAGE}**/*.py.meta")):
        data = json.loads(meta.read_text("utf-8"))
        module = meta.relative_to(mutants).as_posix().removesuffix(".meta")
        kept[module] = {
            "mutants": len(data["exit_code_by_key"]),
            "functions": data["hash_by_function_name"],
            "outcomes": {
                name: code for name, code in sorted(data["exit_code_by_key"].items())
                if code is not None
            },
        }  # fmt: skip
    record.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n", "utf-8")
    return sum(len(module["outcomes"]) for module in kept.values())


def restore(mutants: Path, record: Path) -> int:
    """Write the recorded outcomes as mutmut's files where ``mutants/`` has none; the number
    of outcomes restored."""
    if not record.exists():
        return 0
    restored = 0
    for module, kept in json.loads(record.read_text("utf-8")).items():
        meta = mutants / f"{module}.meta"
        if meta.exists():  # a run on this checkout knows better
            continue
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(
            json.dumps(
                {
                    "exit_code_by_key": kept["outcomes"],
                    "hash_by_function_name": kept["functions"],
                    "type_check_error_by_key": {},
                    "durations_by_key": {},
                    "estimated_durations_by_key": {},
                }
            ),
            "utf-8",
        )
        restored += len(kept["outcomes"])
    return restored


def main(argv: list[str] | None = None) -> int:
    """``save`` or ``restore``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument(
        "--mutants", type=Path, default=ROOT / "mutants", help="mutmut's output folder"
    )
    parser.add_argument("--record", type=Path, default=RECORD, help="the recorded results")
    options = parser.parse_args(argv)
    if options.action == "save":
        count = save(options.mutants, options.record)
        print(f"{count} mutants' outcomes recorded in {options.record}")
    else:
        count = restore(options.mutants, options.record)
        print(f"{count} recorded outcomes restored to {options.mutants}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

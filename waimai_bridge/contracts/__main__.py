"""Write the contract schemas from the models: ``python -m waimai_bridge.contracts [--check]``."""

from __future__ import annotations

import sys
from pathlib import Path

from waimai_bridge.contracts import MODELS, filename, generate, render


def main(argv: list[str]) -> int:
    """Write every schema file, or with ``--check`` report the ones that are out of date."""
    check = "--check" in argv
    folder = Path(__file__).parent
    stale = []
    for name in MODELS:
        path = folder / filename(name)
        text = render(generate(name))
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if check else "written"
    for name in stale:
        print(f"{verb}: {name}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

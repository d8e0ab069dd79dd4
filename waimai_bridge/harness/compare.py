"""Comparing what a fixture expects with what the plugin produced, field by field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_SHOWN = 120


def shown(value: object) -> str:
    """A value as a failure message shows it: JSON, shortened."""
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def differences(expected: Any, actual: Any, path: str) -> Iterator[str]:
    """Every field where ``actual`` differs from ``expected``, as
    ``path: expected X, actual Y`` (``path`` names the top, e.g. ``states[0]``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected.keys() | actual.keys():
            where = f"{path}.{key}"
            if key not in actual:
                yield f"{where}: expected {shown(expected[key])}, actual: missing"
            elif key not in expected:
                yield f"{where}: expected: missing, actual {shown(actual[key])}"
            else:
                yield from differences(expected[key], actual[key], where)
        return
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            yield (
                f"{path}: expected {len(expected)} entries, actual {len(actual)}: "
                f"expected {shown(expected)}, actual {shown(actual)}"
            )
            return
        for index, (one, other) in enumerate(zip(expected, actual, strict=True)):
            yield from differences(one, other, f"{path}[{index}]")
        return
    # 1, 1.0 and True are equal in Python but not in a contract: the types must match too
    if expected != actual or type(expected) is not type(actual):
        yield f"{path}: expected {shown(expected)}, actual {shown(actual)}"

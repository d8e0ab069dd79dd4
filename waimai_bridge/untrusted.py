"""Reading what arrives from outside: JSON every failure of which is a ``ValueError``.

A push is hostile until it is read. :func:`decode_json` turns every way JSON text can be
unusable — longer than a webhook's body may be, not UTF-8, not JSON, nested deep enough
to exhaust a recursive parser or serialiser, ``NaN`` or an overflowing number, an
integer too long to convert, a lone surrogate that no database encoding can hold, a NUL
character that no database text holds — into ``ValueError``. :func:`describe` words a
refused value by its field and problem, never by the value itself (it may be a
customer's text, and the words may be logged).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Final

from pydantic import ValidationError

MAX_JSON_DEPTH: Final = 32
"""The deepest nesting of arrays and objects accepted; real pushes nest a few levels."""

MAX_FORM_FIELDS: Final = 1000
"""The most fields a form body may hold; a plugin may allow fewer."""
MAX_JSON_LENGTH: Final = 1 << 20
"""The longest JSON text read, in bytes (characters for a ``str``): as long as the body a
webhook accepts, so that a plugin reading a JSON string inside a push is bounded too."""

UNREADABLE: Final[tuple[type[Exception], ...]] = (ValueError, TypeError, ArithmeticError)
"""What reading a decoded payload of the wrong shape or size can raise: ``ValueError``
(a model's ``ValidationError`` too), ``TypeError`` (a value of an unexpected type),
``ArithmeticError`` (decimal arithmetic). A plugin refuses a push that raises one."""

_DESCRIPTION_LENGTH = 300


def decode_json(text: str | bytes) -> Any:
    """JSON text as Python values; ``ValueError`` saying why for anything unusable."""
    if len(text) > MAX_JSON_LENGTH:
        raise ValueError(f"the JSON is longer than {MAX_JSON_LENGTH} bytes")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's advice is not for the sender
            digits = sys.get_int_max_str_digits()
            raise ValueError(f"the JSON holds an integer of more than {digits} digits") from None
        raise
    _check(value)
    return value


def describe(error: BaseException) -> str:
    """Why a value was refused, in one short line: for a model's refusal, the fields and
    their problems (never the values)."""
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_input=False)
        text = "; ".join(f"{_location(p['loc'])}: {p['msg']}" for p in problems[:3])
    else:
        text = str(error) or type(error).__name__
    if len(text) > _DESCRIPTION_LENGTH:
        text = text[: _DESCRIPTION_LENGTH - 1] + "…"
    return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check(value: Any) -> None:
    """Refuse what :func:`json.loads` accepts but nothing downstream can hold."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("the JSON holds a number too large for a float")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                pending.extend((inner, depth + 1) for inner in item.values())
            else:
                pending.extend((inner, depth + 1) for inner in item)


def unstorable(text: str) -> str | None:
    """What in ``text`` no database text can hold — a NUL character, or a lone surrogate
    (which is not text) — or None."""
    if "\x00" in text:
        return "a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone surrogate"
    return None


def _check_text(text: str) -> None:
    if (problem := unstorable(text)) is not None:
        raise ValueError(f"the JSON holds {problem}, which no database text holds")


def _location(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "the value"

"""The bridge's own JSON error answers: ``{"error": "…"}``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error answer naming what is wrong."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def invalid(errors: Sequence[Any], *, status: int = 422) -> JSONResponse:
    """A 422 (or ``status``) naming each part of the request that does not validate, and
    why, without echoing what was sent (it may be anything, even text no JSON encoder
    writes)."""
    problems = [
        ([_printable(part) for part in problem["loc"]], str(_printable(problem["msg"])))
        for problem in errors
    ]
    named = "; ".join(".".join(map(str, loc)) + f": {message}" for loc, message in problems)
    detail = [{"loc": loc, "msg": message} for loc, message in problems]
    return JSONResponse({"error": named, "detail": detail}, status_code=status)


def _printable(value: object) -> str | int:
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")

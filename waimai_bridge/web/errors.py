"""The bridge's own JSON error answers: ``{"error": "…"}``."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error answer naming what is wrong."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)

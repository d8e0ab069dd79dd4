"""Helpers for tests and demos: signed pushes and the configuration fixtures are made of.

- :func:`signed_push` turns a message into the body and headers the POS sends.
- :data:`FIXTURE_SETTINGS` / :data:`FIXTURE_STORES` are the fixtures' configuration.

Standard library only, and the same signing code as the plugin (:mod:`.signing`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final

from waimai_bridge_own_pos.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

__all__ = ["FIXTURE_SETTINGS", "FIXTURE_STORES", "push_body", "signed_push"]

FIXTURE_SETTINGS: Final[Mapping[str, str | int]] = {
    "secret": "demo-own-pos-secret-0123456789abcdef",
    "max_skew_seconds": 300,
}
"""The ``[platforms.own_pos]`` table of the fixtures."""

FIXTURE_STORES: Final[Mapping[str, Mapping[str, str | int]]] = {
    "S001": {"pos_store_code": "POS-001"},
    "S002": {},
}
"""The own_pos part of the fixtures' stores: S001 is ``POS-001`` to the POS, S002 its own id."""


def push_body(message: Mapping[str, Any]) -> bytes:
    """A message as the POS sends it: compact JSON in UTF-8."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_push(
    message: Mapping[str, Any], *, secret: str, timestamp_s: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and the headers of a signed push of ``message``, signed at ``timestamp_s``
    (unix seconds; default now)."""
    body = push_body(message)
    timestamp = int(time.time()) if timestamp_s is None else timestamp_s
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    return body, headers

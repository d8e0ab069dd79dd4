"""Eleme's two signatures: of a push (消息推送) and of an API call (nop 1.0.0).

Both are MD5 in upper-case hex over a string ending with the app secret
(platforms.md §1.2 and §2.2; the API one reproduces the official worked example).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def push_signature(envelope: Mapping[str, Any], secret: str) -> str:
    """The signature of a push envelope: every key but ``signature`` as ``key=value``,
    sorted, concatenated, the secret appended, MD5, upper case.

    ``message`` enters verbatim (the JSON string as received, never re-serialised);
    integers print in decimal, as Eleme's Java SDK prints them.
    """
    parts = sorted(
        f"{key}={_push_value(value)}" for key, value in envelope.items() if key != "signature"
    )
    return _md5_upper("".join(parts) + secret)


def request_signature(
    action: str, token: str, metas: Mapping[str, Any], params: Mapping[str, Any], secret: str
) -> str:
    """The signature of an API call: ``action + token + sorted(k=json(v)) + secret`` over
    the metas and the params merged, MD5, upper case."""
    merged = {**params, **metas}
    joined = "".join(f"{key}={compact_json(merged[key])}" for key in sorted(merged))
    return _md5_upper(f"{action}{token}{joined}{secret}")


def compact_json(value: Any) -> str:
    """JSON as Eleme signs and sends it: no spaces, non-ASCII and ``/`` unescaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _push_value(value: Any) -> str:
    # Only strings and integers occur in real envelopes; booleans and null print as
    # Java's StringBuilder would print them [G: never observed].
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()

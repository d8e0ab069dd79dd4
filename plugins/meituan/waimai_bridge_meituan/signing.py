"""Meituan's ``sig``: one formula for the API calls and for the pushes.

``md5(URL + "?" + "&".join(sorted("k=v")) + secret)`` in lower-case hex, over every
parameter but ``sig`` (and binary ``img_data``), values raw (not URL-encoded, Chinese as
is), empty values included as ``k=`` (platforms.md §3.2, §4.2; reproduces the official
example ``00934d00d0aea6f12161edfb6456143d``). For an API call the URL is the request URL
without its query; for a push it is the callback URL entered in the Meituan console.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

UNSIGNED = frozenset({"sig", "img_data"})
"""Parameters that never enter the sig (§4.2)."""


def sig(url: str, params: Mapping[str, object], secret: str, *, skip_empty: bool = False) -> str:
    """The sig of a request to ``url`` with ``params``.

    ``skip_empty`` leaves out empty values, as one community util does (§3.2); the official
    SDK signs them, which is the default.
    """
    signed = {key: str(value) for key, value in params.items() if key not in UNSIGNED}
    if skip_empty:
        signed = {key: value for key, value in signed.items() if value != ""}
    joined = "&".join(f"{key}={signed[key]}" for key in sorted(signed))
    return hashlib.md5(f"{url}?{joined}{secret}".encode()).hexdigest()


def sig_matches(expected: str, given: str) -> bool:
    """Whether a received sig equals the expected one (constant time, case-insensitive)."""
    return hmac.compare_digest(expected.lower().encode(), given.strip().lower().encode())

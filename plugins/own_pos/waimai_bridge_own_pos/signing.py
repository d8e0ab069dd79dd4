"""Signing and verifying own_pos pushes: HMAC-SHA256 over the timestamp and the raw body.

The POS sends two headers with every push::

    X-Waimai-Timestamp: 1716181200              (unix seconds, when it signed)
    X-Waimai-Signature: 5f0c…e1                 (hex HMAC-SHA256 of b"1716181200." + body)

keyed with ``[platforms.own_pos].secret``. It is the scheme the bridge itself uses for
subscriber webhooks, so one verification snippet serves both directions. A push signed more
than ``max_skew_seconds`` away from the bridge's clock is refused as a possible replay: a
POS that delivers a push again signs it again, with a fresh timestamp and the same
``message_id``.
"""

from __future__ import annotations

import hashlib
import hmac

from waimai_bridge.plugin_api import BadSignature, InboundRequest

TIMESTAMP_HEADER = "X-Waimai-Timestamp"
SIGNATURE_HEADER = "X-Waimai-Signature"
DEFAULT_MAX_SKEW_SECONDS = 300
"""The replay window when ``max_skew_seconds`` is not configured."""
MAX_TIMESTAMP_DIGITS = 18
"""Unix seconds have 10 digits until the year 2286: a timestamp longer than this is not
read as a number at all."""


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Waimai-Signature`` of a push: lower-case hex HMAC-SHA256 of ``timestamp.body``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify(request: InboundRequest, *, secret: str, max_skew_seconds: int) -> None:
    """Check a push's signature and that it was signed within the replay window.

    The window is measured against ``request.received_at_ms``, so the check depends on
    the request alone. Raises :class:`BadSignature` (HTTP 401) saying what is wrong.
    """
    timestamp = request.headers.get(TIMESTAMP_HEADER.lower(), "").strip()
    given = request.headers.get(SIGNATURE_HEADER.lower(), "").strip()
    if not timestamp:
        raise BadSignature(f"the push has no {TIMESTAMP_HEADER} header")
    if not given:
        raise BadSignature(f"the push has no {SIGNATURE_HEADER} header")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > MAX_TIMESTAMP_DIGITS:
        raise BadSignature(f"{TIMESTAMP_HEADER} is {timestamp[:20]!r}, not unix seconds")
    expected = signature(secret, timestamp, request.body)
    if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("utf-8")):
        raise BadSignature(f"the push's {SIGNATURE_HEADER} does not verify")
    age_seconds = (request.received_at_ms - int(timestamp) * 1000) / 1000
    if age_seconds > max_skew_seconds:
        raise BadSignature(
            f"the push was signed {age_seconds:.0f} s before it arrived, outside the "
            f"{max_skew_seconds} s replay window; sign every delivery afresh"
        )
    if -age_seconds > max_skew_seconds:
        raise BadSignature(
            f"the push's {TIMESTAMP_HEADER} is {-age_seconds:.0f} s ahead of the bridge's "
            f"clock, outside the {max_skew_seconds} s window; check the POS's clock"
        )

"""The API's bearer tokens and their scopes, checked before a route reads the request.

``GET`` (and ``HEAD``) under ``/api`` needs the ``read`` scope; every other method — actions,
subscriptions, the SKU mapping — needs ``act``. A request without a configured token gets a
401, one whose token lacks the scope a 403 naming it; either way its body is never parsed.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope as AsgiScope

from waimai_bridge.settings import ApiToken, Scope
from waimai_bridge.web.errors import error

READING = frozenset({"GET", "HEAD"})
"""The methods that only read."""

TOKEN_NAME = "token_name"
"""The request state's key of the name of the token a request was let in by (who asked)."""

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class TokenCheck:
    """Which requests under ``/api`` the configured tokens let through."""

    def __init__(self, tokens: Sequence[ApiToken]) -> None:
        self._tokens = [(token.token.get_secret_value().encode(), token) for token in tokens]

    def refusal(self, scope: AsgiScope) -> Response | None:
        """The 401 or 403 answer to an API request, or None to let it through (the token's
        name then in the request's state, as ``request.state.token_name``)."""
        if not self._tokens:
            return error(401, "no API tokens are configured ([bridge].api_tokens)", _CHALLENGE)
        kind, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        if kind.lower() != "bearer" or not given.strip():
            return error(401, "send Authorization: Bearer <token>", _CHALLENGE)
        token = self._match(given.strip().encode("latin-1"))  # as the header arrived
        if token is None:
            return error(401, "the bearer token is not one of the configured tokens", _CHALLENGE)
        method: str = scope["method"]
        needed = Scope.READ if method in READING else Scope.ACT
        if needed not in token.scopes:
            return error(
                403,
                f"this token lacks the {needed.value!r} scope, which {method} requests "
                f"under /api need (its scopes: {', '.join(sorted(token.scopes))})",
            )
        scope.setdefault("state", {})[TOKEN_NAME] = token.name
        return None

    def _match(self, given: bytes) -> ApiToken | None:
        """The configured token ``given`` is, compared in constant time with each."""
        found = None
        for secret, token in self._tokens:
            if hmac.compare_digest(given, secret):
                found = token
        return found

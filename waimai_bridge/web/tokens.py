"""The API's bearer tokens and their scopes, checked before a route reads the request.

``GET`` (and ``HEAD``) under ``/api`` needs the ``read`` scope; every other method — actions,
subscriptions, the SKU mapping — needs ``act``. A request without a configured token gets a
401, one whose token lacks the scope a 403 naming it; either way its body is never parsed.
A request without an ``Authorization`` header may come with the order board's session
cookie instead, the token it logged in with giving the scopes; every method but ``GET`` then
also needs the session's CSRF token (``X-CSRF-Token``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import Scope as AsgiScope

from waimai_bridge.settings import ApiToken, Scope
from waimai_bridge.web.board_session import (
    COOKIE,
    CSRF_HEADER,
    csrf_matches,
    matching_token,
    verify,
)
from waimai_bridge.web.errors import error

READING = frozenset({"GET", "HEAD"})
"""The methods that only read."""

TOKEN_NAME = "token_name"
"""The request state's key of the name of the token a request was let in by (who asked)."""

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class TokenCheck:
    """Which requests under ``/api`` the configured tokens let through."""

    def __init__(self, tokens: Sequence[ApiToken]) -> None:
        self._tokens = list(tokens)

    def refusal(self, scope: AsgiScope) -> Response | None:
        """The 401 or 403 answer to an API request, or None to let it through (the token's
        name then in the request's state, as ``request.state.token_name``)."""
        if not self._tokens:
            return error(401, "no API tokens are configured ([bridge].api_tokens)", _CHALLENGE)
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        if authorization is None and (cookie := _cookie(headers)) is not None:
            return self._session_refusal(scope, headers, cookie)
        kind, _, given = (authorization or "").partition(" ")
        if kind.lower() != "bearer" or not given.strip():
            return error(401, "send Authorization: Bearer <token>", _CHALLENGE)
        token = matching_token(self._tokens, given.strip().encode("latin-1"))  # as it arrived
        if token is None:
            return error(401, "the bearer token is not one of the configured tokens", _CHALLENGE)
        return _let_in(scope, token.name, token.scopes)

    def _session_refusal(self, scope: AsgiScope, headers: Headers, cookie: str) -> Response | None:
        """The answer to a request that came with a board session cookie instead of a token."""
        session = verify(cookie, self._tokens, int(time.time()))
        if session is None:
            return error(401, "the board session has expired or is not valid: log in again")
        if scope["method"] not in READING and not csrf_matches(session, headers.get(CSRF_HEADER)):
            return error(
                403, f"a board session's {scope['method']} request needs the board page's "
                f"{CSRF_HEADER} header",
            )  # fmt: skip
        return _let_in(scope, session.token_name, session.scopes)


def _cookie(headers: Headers) -> str | None:
    """The board session cookie's value, if the request sent one."""
    cookies: dict[str, str] = {}
    for header in headers.getlist("cookie"):
        cookies.update(cookie_parser(header))
    return cookies.get(COOKIE) or None


def _let_in(scope: AsgiScope, name: str, scopes: frozenset[Scope]) -> Response | None:
    """The 403 of a request its token's scopes do not allow; else None, the token's name
    in the request's state."""
    method: str = scope["method"]
    needed = Scope.READ if method in READING else Scope.ACT
    if needed not in scopes:
        return error(
            403,
            f"this token lacks the {needed.value!r} scope, which {method} requests "
            f"under /api need (its scopes: {', '.join(sorted(scopes))})",
        )
    scope.setdefault("state", {})[TOKEN_NAME] = name
    return None

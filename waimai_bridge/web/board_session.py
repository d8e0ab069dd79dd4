"""The order board's login: a signed session cookie for an API token, its CSRF token, and
``POST /board/login`` and ``/board/logout``.

The cookie holds ``<token name>.<expiry epoch s>.<nonce>.<hmac>``, the HMAC keyed by that
token's secret: removing a token from the config ends its sessions. The CSRF token is
HMAC(token secret, ``"csrf:" + nonce``), sent back by the board's pages as ``X-CSRF-Token``
(or a form field ``csrf``) on every request that changes something.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection

from waimai_bridge.settings import ApiToken, Scope
from waimai_bridge.web.errors import error

COOKIE = "waimai_board"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
LIFETIME_S = 12 * 3600
"""How long a login lasts."""
MAX_TOKEN_LENGTH = 200
"""The longest token the login form takes."""
MAX_FORM_FIELDS = 3
"""The login and logout forms' fields: the token or CSRF token, and ``next``."""
MAX_COOKIE_LENGTH = 512
BOARD = "/board"
LOGIN_PAGE = "/board/login"

router = APIRouter(prefix=BOARD, tags=["board"], include_in_schema=False)


@dataclass(frozen=True)
class BoardSession:
    """Who is logged in to the board: the token's name and scopes, and the session's CSRF
    token."""

    token_name: str
    scopes: frozenset[Scope]
    csrf: str
    expires_at_s: int


def _secret(token: ApiToken) -> bytes:
    return token.token.get_secret_value().encode()


def _mac(token: ApiToken, message: str) -> str:
    return hmac.new(_secret(token), message.encode(), hashlib.sha256).hexdigest()


def matching_token(tokens: Sequence[ApiToken], given: bytes) -> ApiToken | None:
    """The configured token ``given`` is, compared in constant time with each."""
    found = None
    for token in tokens:
        if hmac.compare_digest(given, _secret(token)):
            found = token
    return found


def cookie_value(token: ApiToken, now_s: int, nonce: str | None = None) -> str:
    """A new session's cookie for ``token``."""
    signed = (
        f"{quote(token.name, safe='')}.{now_s + LIFETIME_S}.{nonce or secrets.token_urlsafe(16)}"
    )
    return f"{signed}.{_mac(token, 'session:' + signed)}"


def verify(value: str, tokens: Sequence[ApiToken], now_s: int) -> BoardSession | None:
    """The session a cookie holds; None when it is malformed, expired, or signed by no
    configured token."""
    if len(value) > MAX_COOKIE_LENGTH or value.count(".") < 3:
        return None
    signed, _, given = value.rpartition(".")
    name, expiry, nonce = signed.rsplit(".", 2)
    if not (expiry.isascii() and expiry.isdigit()) or int(expiry) <= now_s or not nonce:
        return None
    found = None
    for token in tokens:
        if token.name == unquote(name) and hmac.compare_digest(
            given.encode(), _mac(token, "session:" + signed).encode()
        ):
            found = token
    if found is None:
        return None
    return BoardSession(found.name, found.scopes, _mac(found, "csrf:" + nonce), int(expiry))


def tokens_of(connection: HTTPConnection) -> Sequence[ApiToken]:
    """The configured API tokens of the app serving ``connection``."""
    tokens: Sequence[ApiToken] = connection.app.state.bridge.config.bridge.api_tokens
    return tokens


def current_session(request: HTTPConnection) -> BoardSession | None:
    """The board session of a request's cookie, if it has a valid one."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    return verify(value, tokens_of(request), int(time.time()))


def csrf_matches(session: BoardSession, given: str | None) -> bool:
    """Whether ``given`` is the session's CSRF token."""
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


async def _form(request: Request) -> FormData | None:
    """The posted form, None when it is not a small one."""
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    except Exception:  # malformed, or too many fields
        return None
    return form if len(form) <= MAX_FORM_FIELDS else None


def _local_board_path(value: object) -> str:
    """Where to go after logging in: a path of the board's own, else the board."""
    if not isinstance(value, str) or len(value) > 500 or not value.isascii():
        return BOARD
    own = value == BOARD or value.startswith((BOARD + "/", BOARD + "?"))
    return value if own and "\\" not in value and "//" not in value else BOARD


@router.post("/login")
async def login(request: Request) -> Response:
    """Log in with an API token (form field ``token``): the session cookie, and on to the
    board (or ``next``); a wrong token goes back to the login page with its error."""
    form = await _form(request)
    if form is None:
        return error(400, "send a form with the field token (and optionally next)")
    given = form.get("token")
    token = None
    if isinstance(given, str) and 0 < len(given) <= MAX_TOKEN_LENGTH:
        token = matching_token(tokens_of(request), given.strip().encode())
    if token is None:
        return RedirectResponse(f"{LOGIN_PAGE}?error=1", status_code=303)
    answer = RedirectResponse(_local_board_path(form.get("next")), status_code=303)
    answer.set_cookie(
        COOKIE, cookie_value(token, int(time.time())), max_age=LIFETIME_S, path="/",
        secure=request.url.scheme == "https", httponly=True, samesite="strict",
    )  # fmt: skip
    return answer


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (its CSRF token in the header or the form field ``csrf``): the cookie
    cleared, back to the login page."""
    session = current_session(request)
    if session is not None:
        given = request.headers.get(CSRF_HEADER)
        if given is None:
            form = await _form(request)
            field = None if form is None else form.get(CSRF_FIELD)
            given = field if isinstance(field, str) else None
        if not csrf_matches(session, given):
            return error(403, f"send the board page's CSRF token ({CSRF_HEADER} or {CSRF_FIELD})")
    answer = RedirectResponse(LOGIN_PAGE, status_code=303)
    answer.delete_cookie(
        COOKIE, path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return answer

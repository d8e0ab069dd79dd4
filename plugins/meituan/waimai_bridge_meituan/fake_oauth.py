"""The fake Meituan platform's store authorization: its consent page, its token endpoint and
the access tokens an ISV app's API calls must carry.

It answers as the plugin assumes Meituan does (:mod:`waimai_bridge_meituan.assumptions`,
"store authorization"): ``GET oauth/authorize`` with ``response_type=code`` is the owner's
consent page, given at once (a 302 to ``redirect_uri`` with a single-use ``code`` and the
``state``); with ``response_type=token`` it answers a bound store's tokens; ``POST
oauth/token`` exchanges a code (``authorization_code``) or a refresh token
(``refresh_token``), each usable once: a refresh gives a new access token and a new refresh
token, and the old ones stop working. Tokens last :attr:`FakeTokens.lifetime_s`.
:meth:`FakeTokens.revoke` is a store withdrawing its consent: its tokens stop working and no
refresh or 快捷接口 call gives it new ones until its owner consents again.

The refusals use the codes of Meituan's API error table (§4.4), which the fake takes for the
token endpoint's own: 701 a parameter missing, 705 an unknown grant or code, 4001 an
expired, revoked or unknown token.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from waimai_bridge_meituan import assumptions as facts

OAUTH_PATHS: Final = frozenset({facts.AUTHORIZE_PATH, facts.TOKEN_PATH})
MISSING: Final = (701, "缺少参数")
BAD_GRANT: Final = (705, "授权码无效或已使用")
BAD_TOKEN: Final = (4001, "token已过期或无效")
NOT_BOUND: Final = (4001, "门店未授权")


@dataclass
class Grant:
    """One access token of a store, and when it stops working (epoch seconds)."""

    app_poi_code: str
    expires_at: float


@dataclass(frozen=True)
class Reply:
    """What the fake answers an authorization call: a status, a JSON body, a redirect."""

    status: int
    body: str
    location: str | None = None


class FakeTokens:
    """The codes and tokens the fake platform has issued (not thread-safe: the fake calls
    it under its lock)."""

    def __init__(self, *, lifetime_s: int = 7200, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_s = lifetime_s
        """How long an access token works, in seconds (``expires_in``)."""
        self.refresh_lifetime_s = 30 * 86_400
        self.clock = clock
        self._codes: dict[str, tuple[str, str]] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._revoked: set[str] = set()
        self._serial = itertools.count(1)

    # ------------------------------------------------------------------ controls

    def revoke(self, app_poi_code: str) -> None:
        """The store withdrew its consent: its tokens stop working, nothing renews them."""
        self._revoked.add(app_poi_code)
        for book in (self._access, self._refresh):
            for token in [t for t, grant in book.items() if grant.app_poi_code == app_poi_code]:
                del book[token]

    def issue(self, app_poi_code: str) -> dict[str, Any]:
        """New tokens for the store (it consents again if it had withdrawn), as the token
        endpoint answers them."""
        self._revoked.discard(app_poi_code)
        now = self.clock()
        access = f"mt-at-{next(self._serial)}-{secrets.token_hex(8)}"
        refresh = f"mt-rt-{next(self._serial)}-{secrets.token_hex(8)}"
        self._access[access] = Grant(app_poi_code, now + self.lifetime_s)
        self._refresh[refresh] = Grant(app_poi_code, now + self.refresh_lifetime_s)
        return {
            "status": 0, "message": "success", "access_token": access,
            "expires_in": self.lifetime_s, "refresh_token": refresh,
            "re_expires_in": self.refresh_lifetime_s,
        }  # fmt: skip

    def store_of(self, access_token: str) -> str | None:
        """The store an access token works for now; None for an unknown, revoked or
        expired one."""
        grant = self._access.get(access_token)
        if grant is None or grant.expires_at <= self.clock():
            return None
        return grant.app_poi_code

    def clear(self) -> None:
        """Forget every code and token."""
        self._codes.clear()
        self._access.clear()
        self._refresh.clear()
        self._revoked.clear()

    # ------------------------------------------------------------------ serving

    def serve(self, path: str, params: Mapping[str, str]) -> Reply:
        """The answer to a call of ``oauth/authorize`` or ``oauth/token`` whose sig is right."""
        if path == facts.AUTHORIZE_PATH:
            return self._authorize(params)
        kind = params.get("grant_type", "")
        if kind == facts.CODE_GRANT:
            code = params.get("code", "")
            found = self._codes.pop(code, None)
            if not code:
                return _error(MISSING)
            if found is None or found[1] != params.get("redirect_uri", found[1]):
                return _error(BAD_GRANT)
            return _ok(self.issue(found[0]))
        if kind == "refresh_token":
            old = params.get("refresh_token", "")
            grant = self._refresh.pop(old, None)
            if not old:
                return _error(MISSING)
            if grant is None or grant.expires_at <= self.clock():
                return _error(BAD_TOKEN)
            for token in [
                t for t, g in self._access.items() if g.app_poi_code == grant.app_poi_code
            ]:
                del self._access[token]
            return _ok(self.issue(grant.app_poi_code))
        return _error(BAD_GRANT if kind else MISSING)

    def _authorize(self, params: Mapping[str, str]) -> Reply:
        store = params.get(facts.STORE_CODE_FIELD, "")
        if not store:
            return _error(MISSING)
        if params.get("response_type") == "token":
            if store in self._revoked:
                return _error(NOT_BOUND)
            return _ok(self.issue(store))
        redirect_uri = params.get("redirect_uri", "")
        if params.get("response_type") != "code" or not redirect_uri:
            return _error(MISSING)
        code = f"mt-code-{next(self._serial)}-{secrets.token_hex(8)}"
        self._codes[code] = (store, redirect_uri)
        query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
        joiner = "&" if "?" in redirect_uri else "?"
        return Reply(302, "", location=f"{redirect_uri}{joiner}{urlencode(query)}")


def _ok(answer: Mapping[str, Any]) -> Reply:
    return Reply(200, json.dumps(answer, ensure_ascii=False))


def _error(error: tuple[int, str]) -> Reply:
    return Reply(200, json.dumps({"status": error[0], "message": error[1]}, ensure_ascii=False))


def token_refusal(access_token: str | None, tokens: FakeTokens) -> tuple[int, str] | None:
    """The error an ISV app's API call is answered when its ``access_token`` does not work
    (missing, unknown, revoked or expired); None when it works."""
    if not access_token:
        return MISSING
    return BAD_TOKEN if tokens.store_of(access_token) is None else None

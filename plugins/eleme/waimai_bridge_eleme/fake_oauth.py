"""The fake Eleme's OAuth2 side (platforms.md §2.1, as :mod:`waimai_bridge_eleme.oauth` uses
it): the authorize page a shop's owner consents on, the token endpoint, the access tokens it
issued, which the fake API accepts until they expire or are revoked, and the controls a test
drives them with (:class:`AuthorizationControls`).

- ``GET /authorize?response_type=code&client_id=…&redirect_uri=…&state=…`` stands for the
  owner's consent: a 302 to ``redirect_uri?code=<new code>&state=<state>``. The consenting
  shop is the ``shop_id`` query parameter (the fake's own), else the one signed in.
- ``POST /token`` (Basic auth of app key and secret, a form body) takes
  ``authorization_code`` (a code once, with the redirect URI it was given for),
  ``refresh_token`` (each refresh token once: a refresh rotates it) and
  ``client_credentials``, and answers the OAuth2 fields or ``{"error",
  "error_description"}`` (401 for a wrong client, 400 otherwise).

Every token belongs to one consent; revoking a shop or any of a consent's tokens ends the
consent: its refresh tokens get ``invalid_grant``, its access tokens ``UNAUTHORIZED``. An
access token stays valid after a refresh until it expires. Not thread-safe: the fake calls it
under its lock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlencode

from waimai_bridge_eleme.fake_pushes import deauthorization_message, push_body
from waimai_bridge_eleme.fake_wire import FakeAnswer, Reply

AUTHORIZE_PATH: Final = "/authorize"
TOKEN_PATH: Final = "/token"
TOKEN_SCRIPT: Final = TOKEN_PATH
"""The key of the token endpoint's scripted answers (no API action starts with a slash)."""
DEFAULT_LIFETIME_SECONDS: Final = 30 * 86_400.0
"""How long the fake's access tokens last unless told otherwise (Eleme's is not known)."""
CODE_LIFETIME_SECONDS: Final = 600.0
"""How long an authorization code can be exchanged (the fake's choice)."""
FORM_TYPE: Final = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class FakeTokenCall:
    """One request to the token endpoint and its answer (``error`` None: tokens issued)."""

    grant_type: str
    form: dict[str, str]
    client_ok: bool
    status: int | None
    error: str | None


@dataclass
class Consent:
    """One shop's authorization of the app (or one client-credentials token)."""

    shop_id: int | None
    revoked: bool = False


@dataclass(frozen=True)
class Code:
    """An authorization code not exchanged yet."""

    consent: int
    redirect_uri: str
    issued_at: float


@dataclass
class FakeOAuth:
    """The consents, codes and tokens of the fake."""

    app_key: str
    app_secret: str
    clock: Callable[[], float]
    lifetime: float = DEFAULT_LIFETIME_SECONDS
    signed_in: int | None = None
    outage: int | None = None
    calls: list[FakeTokenCall] = field(default_factory=list)
    _consents: dict[int, Consent] = field(default_factory=dict)
    _codes: dict[str, Code] = field(default_factory=dict)
    _access: dict[str, tuple[int, float]] = field(default_factory=dict)
    _refresh: dict[str, int] = field(default_factory=dict)
    _revoked: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # -- the API's view of a token

    def verdict(self, token: str) -> bool | None:
        """True: a live token this fake issued; False: one it issued that expired or was
        revoked (or any revoked token); None: a token it did not issue."""
        if token in self._revoked:
            return False
        issued = self._access.get(token)
        if issued is None:
            return None
        consent, expires_at = issued
        return not self._consents[consent].revoked and self.clock() < expires_at

    def revoke(self, *, shop_id: int | None = None, token: str | None = None) -> None:
        """End every consent of ``shop_id``, and the consent ``token`` belongs to (a token
        the fake did not issue, such as a static one, is refused from now on)."""
        for consent in self._consents.values():
            if shop_id is not None and consent.shop_id == shop_id:
                consent.revoked = True
        if token is None:
            return
        issued = self._access.get(token)
        owner = issued[0] if issued is not None else self._refresh.get(token)
        if owner is None:
            self._revoked.add(token)
        else:
            self._consents[owner].revoked = True

    # -- the authorize page

    def authorize(self, query: Mapping[str, list[str]]) -> Reply:
        """The owner consents: a redirect to the app's callback with a new code."""
        values = {name: found[0] for name, found in query.items() if found}
        if values.get("response_type") != "code":
            return Reply(400, text="response_type must be code")
        if values.get("client_id") != self.app_key:
            return Reply(400, text="unknown client_id")
        redirect_uri = values.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return Reply(400, text="redirect_uri must be an http(s) URL")
        shop = values.get("shop_id")
        shop_id = int(shop) if shop is not None and shop.isdigit() else self.signed_in
        code = secrets.token_hex(16)
        consent = self._consent(shop_id)
        self._codes[code] = Code(consent, redirect_uri, self.clock())
        back = {"code": code, **({"state": values["state"]} if "state" in values else {})}
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode(back)}"
        return Reply(302, text="", headers=(("Location", location),))

    # -- the token endpoint

    def token(self, headers: Mapping[str, str], body: bytes, scripted: FakeAnswer | None) -> Reply:
        """Answer a token request (with the outage's status during one, else ``scripted``
        if given) and record it; ``headers`` with lower-case names."""
        form = _form(body) if _is_form(headers) else None
        client_ok = self._client_ok(headers.get("authorization", ""))
        grant = (form or {}).get("grant_type", "")
        if self.outage is not None:
            reply = Reply(self.outage, text="Service Unavailable")
        elif scripted is not None:
            reply = self._scripted(scripted, form, client_ok)
        else:
            reply = self._issue(form, client_ok)
        error = (reply.envelope or {}).get("error")
        self.calls.append(
            FakeTokenCall(grant, dict(form or {}), client_ok, reply.status, _text(error))
        )
        return reply

    def _scripted(self, answer: FakeAnswer, form: dict[str, str] | None, client_ok: bool) -> Reply:
        if answer.kind == "ok":
            if isinstance(answer.result, dict):
                return Reply(200, answer.result)
            return Reply(200, text=json.dumps(answer.result))
        if answer.kind == "error":
            return _error(400, answer.code, answer.message)
        if answer.kind == "http":
            return Reply(answer.status, text=answer.body)
        if answer.kind == "drop":
            return Reply(None)
        if answer.then is not None:
            then = self._scripted(answer.then, form, client_ok)
        else:
            then = self._issue(form, client_ok)
        return Reply(then.status, then.envelope, then.text, then.delay + answer.seconds)

    def _issue(self, form: dict[str, str] | None, client_ok: bool) -> Reply:
        if not client_ok:
            return _error(401, "invalid_client", "the app key or secret is wrong")
        if form is None:
            return _error(400, "invalid_request", "the body must be form-encoded")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._by_code(form)
        if grant == "refresh_token":
            return self._by_refresh(form)
        if grant == "client_credentials":
            return self._answer(self._consent(self.signed_in), refresh=False)
        return _error(400, "unsupported_grant_type", "grant_type is not supported")

    def _by_code(self, form: Mapping[str, str]) -> Reply:
        if form.get("client_id") != self.app_key:
            return _error(401, "invalid_client", "client_id is not the app's")
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or self.clock() - code.issued_at > CODE_LIFETIME_SECONDS:
            return _error(400, "invalid_grant", "the code is unknown, used or expired")
        if form.get("redirect_uri") != code.redirect_uri:
            return _error(400, "invalid_grant", "redirect_uri is not the authorization's")
        if self._consents[code.consent].revoked:
            return _error(400, "invalid_grant", "the authorization was withdrawn")
        return self._answer(code.consent, refresh=True)

    def _by_refresh(self, form: Mapping[str, str]) -> Reply:
        consent = self._refresh.pop(form.get("refresh_token", ""), None)
        if consent is None or self._consents[consent].revoked:
            return _error(400, "invalid_grant", "the refresh token is unknown, used or revoked")
        return self._answer(consent, refresh=True)

    def _answer(self, consent: int, *, refresh: bool) -> Reply:
        access = secrets.token_hex(16)
        self._access[access] = (consent, self.clock() + self.lifetime)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.lifetime),
        }
        if refresh:
            answer["refresh_token"] = secrets.token_hex(16)
            self._refresh[answer["refresh_token"]] = consent
        return Reply(200, answer)

    def _consent(self, shop_id: int | None) -> int:
        number = next(self._ids)
        self._consents[number] = Consent(shop_id)
        return number

    def _client_ok(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.app_key}:{self.app_secret}"
        return hmac.compare_digest(decoded.encode(), expected.encode())


def _is_form(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == FORM_TYPE


def _form(body: bytes) -> dict[str, str] | None:
    """A form body with each field once; None when it is not one."""
    try:
        parsed = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return None
    if any(len(values) != 1 for values in parsed.values()):
        return None
    return {name: values[0] for name, values in parsed.items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _error(status: int, error: str, description: str) -> Reply:
    return Reply(status, {"error": error, "error_description": description})


class AuthorizationControls:
    """What a test does with the fake's authorization side (mixed into
    :class:`~waimai_bridge_eleme.testing.FakeEleme`, whose state it uses)."""

    app_id: int | None
    clock: Callable[[], float]
    _app_secret: str
    _lock: threading.Lock
    _oauth: FakeOAuth
    _scripts: dict[str, deque[FakeAnswer]]

    def sign_in(self, shop_id: int | None) -> None:
        """The shop whose owner consents on the authorize page from now on (unless the
        request names a ``shop_id``), and whose client-credentials tokens are issued."""
        with self._lock:
            self._oauth.signed_in = shop_id

    def expire_in(self, seconds: float) -> None:
        """The lifetime of the access tokens issued from now on."""
        with self._lock:
            self._oauth.lifetime = seconds

    def revoke(self, *, shop_id: int | None = None, token: str | None = None) -> None:
        """The shop withdrew its authorization (every token issued for it ends), or the
        authorization ``token`` belongs to ended (any other token is refused from now on):
        refreshing gets ``invalid_grant``, calling the API ``UNAUTHORIZED``."""
        with self._lock:
            self._oauth.revoke(shop_id=shop_id, token=token)

    def script_token(self, *answers: FakeAnswer) -> None:
        """Queue answers for the token endpoint, one per request: ``ok(result)`` a 200 with
        that JSON, ``error(code, description)`` a 400 OAuth2 error, ``http``, ``slow`` and
        ``drop`` as for the API."""
        with self._lock:
            self._scripts.setdefault(TOKEN_SCRIPT, deque()).extend(answers)

    def token_outage(self, status: int | None) -> None:
        """From now on the token endpoint answers every request with HTTP ``status`` and no
        OAuth2 answer (a gateway's 5xx), until ``token_outage(None)`` or ``reset()``."""
        with self._lock:
            self._oauth.outage = status

    @property
    def token_calls(self) -> list[FakeTokenCall]:
        """Every request to the token endpoint so far, oldest first (a copy)."""
        with self._lock:
            return list(self._oauth.calls)

    def deauthorization_push(self, shop_id: int, *, request_id: str | None = None) -> bytes:
        """The signed type-100 push (解除授权, platforms.md §1.5) Eleme sends when the shop
        withdraws its authorization; POST it to the bridge's ``/webhooks/eleme``."""
        if self.app_id is None:
            raise RuntimeError("the fake needs its app_id to sign a push")
        message = deauthorization_message(shop_id, self.app_id, at_seconds=int(self.clock()))
        return push_body(
            100, message, app_id=self.app_id, shop_id=shop_id, secret=self._app_secret,
            request_id=request_id,
        )  # fmt: skip

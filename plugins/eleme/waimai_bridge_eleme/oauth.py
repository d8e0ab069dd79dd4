"""Store authorization on Eleme (OAuth2, platforms.md §2.1): the authorize page a shop's
owner consents on, and the token endpoint that gives, renews and replaces access tokens.

Both live under ``oauth_base`` (``https://open-api.shop.ele.me``, the sandbox
``https://open-api-sandbox.shop.ele.me``). Which grant the app uses is configured:

- ``authorization_code`` (enterprise and ISV apps): the owner consents on
  ``{oauth_base}/authorize``, Eleme sends them back to the bridge with a code, the code is
  exchanged at ``{oauth_base}/token``; the refresh token renews the access token;
- ``client_credentials`` (a single-shop app): the app key and secret alone give a token, and
  asking again renews it.

Every token request is ``POST {oauth_base}/token``, form-encoded, with
``Authorization: Basic base64(app_key:app_secret)``, and is answered with the OAuth2 fields
``access_token``, ``token_type``, ``expires_in``, ``refresh_token``, or with ``error`` and
``error_description``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

import httpx

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
    PlatformRejected,
    PluginConfig,
    TransientPlatformError,
)
from waimai_bridge_eleme import assumptions as facts

AUTHORIZATION_CODE: Final = "authorization_code"
CLIENT_CREDENTIALS: Final = "client_credentials"
GRANTS: Final = (AUTHORIZATION_CODE, CLIENT_CREDENTIALS)
DEFAULT_GRANT: Final = AUTHORIZATION_CODE
DEFAULT_OAUTH_BASE: Final = "https://open-api.shop.ele.me"
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_TOKEN: Final = 4096
"""Characters of a token at most (the contract's bound on ``Credentials``)."""
MAX_SCOPE: Final = 500
MAX_DESCRIPTION: Final = 200
"""Characters of Eleme's ``error_description`` kept in an exception's message at most."""
TRANSIENT_ERRORS: Final = frozenset({"server_error", "temporarily_unavailable"})
"""OAuth2 error codes that say "try again later" (RFC 6749 §4.1.2.1)."""


def grant(config: PluginConfig) -> str:
    """The grant the app uses (``[platforms.eleme] grant``)."""
    return str(config.settings.get("grant", DEFAULT_GRANT))


def oauth_base(config: PluginConfig) -> str:
    """Where the authorize page and the token endpoint are, without a trailing slash."""
    return str(config.settings.get("oauth_base", DEFAULT_OAUTH_BASE)).rstrip("/")


def authorize_url(request: AuthorizationRequest, config: PluginConfig) -> AuthorizationStart:
    """The authorize page for the store's owner; no URL for a client-credentials app."""
    if grant(config) == CLIENT_CREDENTIALS:
        return AuthorizationStart(url=None)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.settings["app_key"],
            "redirect_uri": request.redirect_uri,
            "state": request.state,
            "scope": facts.AUTHORIZE_SCOPE,
        }
    )
    return AuthorizationStart(url=f"{oauth_base(config)}/authorize?{query}")


def exchange_code(exchange: CodeExchange, config: PluginConfig) -> Credentials:
    """The store's credentials for the code its owner's consent gave (for a
    client-credentials app, which has no code: the app's token).

    :raises PlatformRejected: Eleme refused the code (used, expired, another app's), or the
        app has the authorization-code grant and no code came.
    :raises TransientPlatformError: Eleme could not be reached, or asked to try again.
    """
    if exchange.code is None:
        if grant(config) != CLIENT_CREDENTIALS:
            raise PlatformRejected(
                "an authorization-code app needs the code of the owner's consent",
                code="NO_CODE",
            )
        return _token({"grant_type": CLIENT_CREDENTIALS}, config, sent=())
    form = {
        "grant_type": AUTHORIZATION_CODE,
        "code": exchange.code,
        "redirect_uri": exchange.redirect_uri,
        "client_id": str(config.settings["app_key"]),
    }
    return _token(form, config, sent=(exchange.code,))


def refresh_credentials(refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
    """The store's renewed credentials: the refresh token exchanged (authorization-code
    apps), or a new token asked for (client-credentials apps). A refresh answer without a
    refresh token keeps the old one.

    :raises PlatformRejected: Eleme refused (consent withdrawn, refresh token expired), or
        there is no refresh token to renew with.
    :raises TransientPlatformError: Eleme could not be reached, or asked to try again.
    """
    if grant(config) == CLIENT_CREDENTIALS:
        return _token({"grant_type": CLIENT_CREDENTIALS}, config, sent=())
    old = refresh.credentials.refresh_token
    if old is None:
        raise PlatformRejected(
            f"store {refresh.store_id!r} has no Eleme refresh token: authorize it again",
            code="NO_REFRESH_TOKEN",
        )
    form = {"grant_type": "refresh_token", "refresh_token": old}
    if facts.REFRESH_WITH_SCOPE and refresh.credentials.scope:
        form["scope"] = refresh.credentials.scope
    renewed = _token(form, config, sent=(old,))
    if renewed.refresh_token is None or not facts.REFRESH_TOKENS_ROTATE:
        return renewed.model_copy(update={"refresh_token": old})
    return renewed


def _token(form: Mapping[str, str], config: PluginConfig, *, sent: Iterable[str]) -> Credentials:
    """POST one token request; ``sent`` are the secrets in it, never quoted back."""
    settings = config.settings
    key, secret = str(settings["app_key"]), str(settings["app_secret"])
    hidden = (*sent, secret)
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")
    requested_ms = int(time.time() * 1000)
    try:
        response = httpx.post(
            f"{oauth_base(config)}/token",
            content=urlencode(form).encode("ascii"),
            headers={
                "authorization": f"Basic {basic}",
                "content-type": "application/x-www-form-urlencoded; charset=utf-8",
                "accept": "application/json",
            },
            timeout=float(settings.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
        )
    except httpx.TransportError as exc:
        code = "TIMEOUT" if isinstance(exc, httpx.TimeoutException) else "NETWORK"
        raise TransientPlatformError(
            f"Eleme's token endpoint: {type(exc).__name__}", code=code
        ) from None
    answer = _json(response)
    if answer is not None and "error" in answer:
        raise _refusal(response.status_code, answer, hidden)
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise TransientPlatformError(
            f"Eleme's token endpoint answered HTTP {response.status_code}",
            code=f"HTTP_{response.status_code}",
        )
    if response.status_code >= 400:
        raise PlatformRejected(
            f"Eleme's token endpoint answered HTTP {response.status_code}",
            code=f"HTTP_{response.status_code}",
        )
    if answer is None:
        raise TransientPlatformError("Eleme's token endpoint answered no JSON", code="ANSWER")
    return credentials(answer, requested_ms)


def credentials(answer: Mapping[str, Any], requested_ms: int) -> Credentials:
    """The credentials of a token answer; the expiry counts from when it was asked for.

    :raises TransientPlatformError: the answer holds no usable access token or lifetime.
    """
    access = _text(answer.get("access_token"), MAX_TOKEN)
    refresh = answer.get("refresh_token")
    scope = answer.get("scope")
    if access is None:
        raise TransientPlatformError(
            "Eleme's token endpoint answered no usable access_token", code="ANSWER"
        )
    lifetime = _seconds(answer.get("expires_in"))
    if lifetime is None:
        lifetime_ms = facts.FALLBACK_TOKEN_LIFETIME_SECONDS * 1000
    else:
        lifetime_ms = lifetime * 1000 if facts.TOKEN_LIFETIME_IN_SECONDS else lifetime
    return Credentials(
        access_token=access,
        refresh_token=_text(refresh, MAX_TOKEN),
        expires_at_ms=requested_ms + lifetime_ms,
        scope=_text(scope, MAX_SCOPE),
    )


def _text(value: Any, longest: int) -> str | None:
    """``value`` if it is a string of 1 to ``longest`` characters, else None."""
    return value if isinstance(value, str) and 0 < len(value) <= longest else None


def _seconds(value: Any) -> int | None:
    """``expires_in`` as whole seconds (a number, or a string of digits); None if absent
    or not a lifetime."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**12:
        return None
    return value


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _refusal(
    status: int, answer: Mapping[str, Any], hidden: Iterable[str]
) -> TransientPlatformError | PlatformRejected:
    """The exception of an OAuth2 error answer: transient for a server fault, else final."""
    error = str(answer.get("error") or "unknown_error")[:MAX_ID_LENGTH]
    description = _scrubbed(str(answer.get("error_description") or ""), hidden)
    message = f"Eleme's token endpoint refused: {error}"
    if description:
        message += f" ({description})"
    if error in TRANSIENT_ERRORS or (status >= 500 and error not in facts.OAUTH_REFUSALS):
        return TransientPlatformError(message, code=error)
    return PlatformRejected(message, code=error)


def _scrubbed(text: str, hidden: Iterable[str]) -> str:
    """``text`` cut short, with every secret the request carried blanked out."""
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"

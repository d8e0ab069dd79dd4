"""Store authorization for an ISV (服务商) app: a store's access token obtained and renewed.

A developer app (``app_type = "developer"``, the default) acts on its own stores with its
``app_id`` and secret alone: it has nothing to authorize, and the hooks say so. An ISV app
(``app_type = "isv"``) calls the API for a store with that store's ``access_token``, got one
of two ways (``isv_grant``):

- ``authorization_code``: the store's owner consents on Meituan's page
  (``{api_base}oauth/authorize``, ``response_type=code``), Meituan sends them back to the
  bridge with a code, and the code is exchanged at ``{api_base}oauth/token``;
- ``direct``: Meituan's 快捷接口 (``oauth/authorize`` with ``response_type=token``) answers
  the token of a store already bound to the app, with nobody's consent asked.

Either way the refresh token renews the access token at ``oauth/token``. Every request is
signed like an API call (:func:`.api.signed_params`). What the research could not confirm
of these endpoints is in :mod:`.assumptions` ("store authorization").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
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
from waimai_bridge_meituan import api
from waimai_bridge_meituan import assumptions as facts

AUTHORIZATION_CODE: Final = "authorization_code"
DIRECT: Final = "direct"
DEFAULT_GRANT: Final = AUTHORIZATION_CODE
AUTHORIZE: Final = api.Endpoint("GET", facts.AUTHORIZE_PATH)
TOKEN: Final = api.Endpoint("POST", facts.TOKEN_PATH)
MAX_TOKEN: Final = 4096
"""Characters of a token at most (the contract's bound on ``Credentials``)."""
MAX_MESSAGE: Final = 200
"""Characters of Meituan's own words kept in an exception's message at most."""

Clock = Callable[[], float]


def grant(config: PluginConfig) -> str:
    """How the ISV app gets a store's token (``[platforms.meituan] isv_grant``)."""
    return str(config.settings.get("isv_grant") or DEFAULT_GRANT)


def developer_refusal() -> PlatformRejected:
    """The refusal of a developer app, which has no store to authorize."""
    return PlatformRejected(
        "a Meituan developer app acts on its stores with its app_id and secret alone and "
        'needs no store authorization; an ISV (服务商) app sets app_type = "isv"',
        code="DEVELOPER_APP",
    )


def store_code(store_id: str, config: PluginConfig) -> str:
    """The store's ``app_poi_code``."""
    binding = config.stores.get(store_id)
    if binding is None or facts.STORE_CODE_FIELD not in binding:
        raise PlatformRejected(f"store {store_id!r} is not bound to Meituan", code="NO_STORE")
    return str(binding[facts.STORE_CODE_FIELD])


def authorize_url(
    request: AuthorizationRequest, config: PluginConfig, *, clock: Clock = time.time
) -> AuthorizationStart:
    """Meituan's consent page for the store's owner; no URL for a ``direct`` app."""
    if not api.is_isv(config):
        raise developer_refusal()
    code = store_code(request.store_id, config)
    if grant(config) == DIRECT:
        return AuthorizationStart(url=None)
    url = api.api_base(config) + AUTHORIZE.path
    params = {
        facts.STORE_CODE_FIELD: code,
        "response_type": "code",
        "redirect_uri": request.redirect_uri,
        "state": request.state,
    }
    signed = api.signed_params(url, params, config, now_s=int(clock()))
    return AuthorizationStart(url=f"{url}?{urlencode(signed)}")


def exchange_code(
    exchange: CodeExchange, config: PluginConfig, *, clock: Clock = time.time
) -> Credentials:
    """The store's credentials for the code of its owner's consent (for a ``direct`` app,
    which has no code: the token Meituan gives the app for the store).

    :raises PlatformRejected: a developer app; an ISV app on the code grant without a code;
        Meituan refused (the code used or expired, the store not bound to the app).
    :raises TransientPlatformError: Meituan could not be reached, or asked to try again.
    """
    if not api.is_isv(config):
        raise developer_refusal()
    if exchange.code is not None:
        form = {
            "grant_type": facts.CODE_GRANT,
            "code": exchange.code,
            "redirect_uri": exchange.redirect_uri,
        }
        return _token(TOKEN, form, config, sent=(exchange.code,), clock=clock)
    if grant(config) != DIRECT:
        raise PlatformRejected(
            "an ISV app on the authorization_code grant needs the code of the owner's consent",
            code="NO_CODE",
        )
    return _direct(exchange.store_id, config, clock=clock)


def refresh_credentials(
    refresh: CredentialsRefresh, config: PluginConfig, *, clock: Clock = time.time
) -> Credentials:
    """The store's renewed credentials: the refresh token exchanged at ``oauth/token``
    (a ``direct`` app without one asks for the token again).

    A developer app's calls carry no token, so a token kept from an earlier ISV setup is
    given back as it is, without an expiry: nothing asks for it to be renewed again.

    :raises PlatformRejected: Meituan refused (consent withdrawn, refresh token expired),
        or there is no refresh token to renew with.
    :raises TransientPlatformError: Meituan could not be reached, or asked to try again.
    """
    current = refresh.credentials
    if not api.is_isv(config):
        return current.model_copy(update={"expires_at_ms": None})
    old = current.refresh_token
    if old is None:
        if grant(config) == DIRECT:
            return _direct(refresh.store_id, config, clock=clock)
        raise PlatformRejected(
            f"store {refresh.store_id!r} has no Meituan refresh token: authorize it again",
            code="NO_REFRESH_TOKEN",
        )
    form = {"grant_type": "refresh_token", "refresh_token": old}
    renewed = _token(TOKEN, form, config, sent=(old, current.access_token), clock=clock)
    if renewed.refresh_token is None or not facts.REFRESH_TOKENS_ROTATE:
        return renewed.model_copy(update={"refresh_token": old})
    return renewed


def _direct(store_id: str, config: PluginConfig, *, clock: Clock) -> Credentials:
    params = {facts.STORE_CODE_FIELD: store_code(store_id, config), "response_type": "token"}
    return _token(AUTHORIZE, params, config, sent=(), clock=clock)


def _token(
    endpoint: api.Endpoint,
    params: Mapping[str, str],
    config: PluginConfig,
    *,
    sent: Iterable[str],
    clock: Clock,
) -> Credentials:
    """One signed token request; ``sent`` are the secrets in it, never quoted back."""
    hidden = (*sent, str(config.settings["app_secret"]))
    requested_ms = int(clock() * 1000)
    try:
        response = api.call(endpoint, params, config, clock=clock)
    except httpx.HTTPError as exc:
        raise TransientPlatformError(
            f"Meituan's {endpoint.path}: {type(exc).__name__}", code="NETWORK"
        ) from None
    answer = _json(response)
    status = response.status_code
    if answer is not None:
        refused = refusal(endpoint, answer, hidden)
        if refused is not None:
            raise refused
    if status == 429 or status >= 500:
        raise TransientPlatformError(
            f"Meituan's {endpoint.path}: HTTP {status}", code=f"http_{status}"
        )
    if status >= 400:
        raise PlatformRejected(f"Meituan's {endpoint.path}: HTTP {status}", code=f"http_{status}")
    if answer is None:
        raise TransientPlatformError(f"Meituan's {endpoint.path} answered no JSON", code="ANSWER")
    return credentials(answer, requested_ms)


def refusal(
    endpoint: api.Endpoint, answer: Mapping[str, Any], hidden: Iterable[str]
) -> PlatformRejected | TransientPlatformError | None:
    """The exception of an error answer (a non-zero ``status``, or the API's error shape);
    None for an answer that is no error."""
    error = answer.get("error")
    if isinstance(error, dict) and error.get("code") is not None:
        code = str(error["code"])
        words = str(error.get("msg") or error.get("message") or "")
    elif "status" in answer and str(answer["status"]).strip() != facts.TOKEN_OK_STATUS:
        code = str(answer["status"]).strip()
        words = str(answer.get("message") or "")
    else:
        return None
    code = code[:MAX_ID_LENGTH]
    message = f"Meituan's {endpoint.path} refused ({code})"
    words = _scrubbed(words, hidden)
    if words:
        message += f": {words}"
    if code in facts.TOKEN_TRANSIENT_CODES:
        return TransientPlatformError(message, code=code)
    return PlatformRejected(message, code=code)


def credentials(answer: Mapping[str, Any], requested_ms: int) -> Credentials:
    """The credentials of a token answer; the expiry counts from when it was asked for.

    :raises TransientPlatformError: the answer holds no usable access token.
    """
    data = answer.get("data")
    if "access_token" not in answer and isinstance(data, dict):
        answer = data
    access = answer.get("access_token")
    refresh = answer.get("refresh_token")
    if not isinstance(access, str) or not 0 < len(access) <= MAX_TOKEN:
        raise TransientPlatformError(
            "Meituan's token answer holds no usable access_token", code="ANSWER"
        )
    lifetime = _seconds(answer.get("expires_in")) or facts.FALLBACK_TOKEN_LIFETIME_SECONDS
    usable = isinstance(refresh, str) and 0 < len(refresh) <= MAX_TOKEN
    return Credentials(
        access_token=access,
        refresh_token=refresh if usable else None,
        expires_at_ms=requested_ms + lifetime * 1000,
    )


def _seconds(value: Any) -> int | None:
    """``expires_in`` as whole seconds (a number, or a string of digits); None if absent
    or no lifetime."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**11:
        return None
    return value


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _scrubbed(text: str, hidden: Iterable[str]) -> str:
    """``text`` cut short, with every secret the request carried blanked out."""
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"

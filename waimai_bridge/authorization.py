"""The models of the optional authorization hooks (contract 1.6): a store's consent to the
chain's app asked for, the code it gives exchanged for credentials, and credentials
refreshed before they expire."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from waimai_bridge.bounds import EpochMs, Id
from waimai_bridge.models import ContractModel

MAX_TOKEN_LENGTH = 4096
"""Characters of a token (or an authorization code) at most."""
MAX_URL_LENGTH = 2048
"""Characters of an authorization or redirect URL at most."""

Token = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH, pattern=r"^https?://")]


class AuthorizationRequest(ContractModel):
    """A store about to be authorized (``authorize_url``)."""

    store_id: Id
    state: str = Field(
        pattern=r"^[A-Za-z0-9_-]{16,128}$",
        repr=False,
        description="A single-use value the platform hands back to the callback with the "
        "code; it binds the callback to this store.",
    )
    redirect_uri: Url = Field(
        description="The bridge's callback: public_base_url + /oauth/{platform}/callback."
    )


class AuthorizationStart(ContractModel):
    """Where a store's owner gives the chain's app their consent."""

    url: Url | None = Field(
        description="The platform's authorization page, carrying the app, the redirect URI "
        "and the state; null when the app needs nobody's consent (a platform's "
        "client-credentials grant): the core then calls ``exchange_code`` with no code."
    )


class CodeExchange(ContractModel):
    """An authorization code to exchange for a store's credentials (``exchange_code``)."""

    store_id: Id
    code: Token | None = Field(
        repr=False,
        description="The code the platform gave the callback; null for an app "
        "that needs no consent (``authorize_url`` answered no URL).",
    )
    redirect_uri: Url = Field(description="The redirect URI the authorization was asked with.")


class Credentials(ContractModel):
    """What lets the bridge act on the platform for one store. Never logged, never shown."""

    access_token: Token = Field(repr=False)
    refresh_token: Token | None = Field(default=None, repr=False)
    expires_at_ms: EpochMs | None = Field(
        default=None, description="When the access token expires; null: it does not."
    )
    scope: Annotated[str, Field(max_length=500)] | None = None


class CredentialsRefresh(ContractModel):
    """A store's credentials to renew before they expire (``refresh_credentials``)."""

    store_id: Id
    credentials: Credentials

"""The config file's own tables as models: ``[bridge]`` (with the API tokens),
``[anomalies]`` (when an order counts as stuck) and ``[retention]`` (how long work already
done is kept). Loading and validating the file is :mod:`waimai_bridge.config`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from waimai_bridge.sealing import check_key

MIN_SECRET_LENGTH = 16
"""The shortest API token or subscription secret accepted: a shorter one can be guessed."""


class Scope(StrEnum):
    """What an API token may do."""

    READ = "read"
    """``GET`` anything under ``/api``."""
    ACT = "act"
    """Everything else under ``/api``: actions, subscriptions, the SKU mapping."""


class ApiToken(BaseModel):
    """An ``api_tokens`` entry: the bearer token and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr
    name: str = Field(default="", max_length=64)
    """Who uses the token, as logs and dead-letter records name them; ``token-N`` (its
    place in the list, from 1) when not given."""
    scopes: frozenset[Scope] = Field(default=frozenset(Scope), min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        """A plain string is a token of every scope."""
        return {"token": value} if isinstance(value, str) else value

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters long (a shorter token "
                "can be guessed); e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        return value


class BridgeSettings(BaseSettings):
    """The ``[bridge]`` table; ``WAIMAI_<KEY>`` environment variables override it."""

    model_config = SettingsConfigDict(env_prefix="WAIMAI_", extra="forbid", frozen=True)

    database_url: str = Field(
        default="sqlite:///waimai-bridge.db",
        description="SQLAlchemy URL: sqlite:///FILE (embedded) or postgresql+psycopg://…",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where platforms reach the bridge; some platforms sign this URL.",
    )
    broker_url: str = Field(
        default="", description='"" for the in-process broker, or redis://host:6379/0'
    )
    shards: int = Field(default=8, ge=1, le=1024, description="How many store-pinned queues.")
    accept_hold_seconds: int = Field(
        default=60, ge=0, description="How long an accepted order waits before it is stored."
    )
    auto_accept: bool = Field(
        default=False,
        description="Whether the bridge confirms new orders itself, on every store's channel "
        "not set otherwise through the API (PUT /api/v1/stores/{id}/channels/{platform}).",
    )
    api_tokens: list[ApiToken] = Field(
        default_factory=list,
        description='Bearer tokens accepted by /api: "TOKEN" (every scope) or '
        '{ token = "TOKEN", scopes = ["read"] }.',
    )
    intake_max_waiting: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Pushes that may wait for the inbox at once; more get 503 + Retry-After.",
    )
    sweep_interval_seconds: float = Field(
        default=15, gt=0, description="How often workers look for work a lost message left."
    )
    resend_after_seconds: float = Field(
        default=60, gt=0, description="How long an event may wait in line before it is resent."
    )
    pull_interval_seconds: float = Field(
        default=60,
        ge=0,
        description="How often one worker pulls what platforms failed to push; 0: never.",
    )
    refetch_after_minutes: float = Field(
        default=30,
        gt=0,
        description="How long a stored order may stand still before it is read again "
        "from its platform.",
    )
    action_tries: int = Field(
        default=3, ge=1, le=100, description="Platform calls an action gets before it fails."
    )
    action_retry_seconds: float = Field(
        default=5, ge=0, description="The wait between two tries of an action (seed 002)."
    )
    subscriber_retry_seconds: float = Field(
        default=1, gt=0, description="The first wait before an update is POSTed again; doubles."
    )
    subscriber_give_up_seconds: float = Field(
        default=3600, gt=0, description="How long an update is retried before it is dead."
    )
    subscriber_timeout_seconds: float = Field(
        default=5,
        gt=0,
        le=25,
        description="How long a subscriber may take to answer; well inside a worker "
        "message's time limit.",
    )
    subscriber_allow_private: bool = Field(
        default=False,
        description="Let subscriber URLs reach loopback, link-local and private addresses.",
    )

    @field_validator("api_tokens")
    @classmethod
    def _named(cls, tokens: list[ApiToken]) -> list[ApiToken]:
        return [
            token if token.name else token.model_copy(update={"name": f"token-{n}"})
            for n, token in enumerate(tokens, start=1)
        ]

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError("must be an http:// or https:// URL without query or fragment")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment overrides the file (the file arrives as init arguments)."""
        return env_settings, init_settings


class AnomalyRule(StrEnum):
    """The kinds of anomaly: each a rule of :mod:`waimai_bridge.store.anomaly_rules`."""

    NOT_ACCEPTED = "not_accepted"
    NO_RIDER = "no_rider"
    RIDER_AT_STORE = "rider_at_store"
    REQUEST_UNANSWERED = "request_unanswered"
    NOT_COMPLETED = "not_completed"
    UNMAPPED_SKU = "unmapped_sku"
    TOTAL_MISMATCH = "total_mismatch"
    INCOME_MISMATCH = "income_mismatch"
    """The platform's income after a refund is not what the rule gives."""
    PRICE_UNREADABLE = "price_unreadable"
    """Written as the order is stored: its price breakdown could not be read."""
    LINES_NOT_STORED = "lines_not_stored"
    """Written as the order is stored: its lines could not be stored."""
    CHANNEL_UNAUTHORIZED = "channel_unauthorized"
    """Of a store's channel, not an order: the platform refused to renew its credentials,
    or the store withdrew its consent; resolved once it is authorized again."""


class AnomalySettings(BaseModel):
    """The ``[anomalies]`` table: the thresholds of the anomaly rules (SPEC §9), and how
    often one worker evaluates them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_seconds: float = Field(
        default=60, ge=0, description="How often one worker evaluates the rules; 0: never."
    )
    not_accepted_minutes: float = Field(
        default=10, gt=0, description="A new order not accepted within this long."
    )
    no_rider_minutes: float = Field(
        default=30, gt=0, description="An accepted order with no rider within this long."
    )
    rider_at_store_minutes: float = Field(
        default=15, gt=0, description="A rider waiting at the store for this long."
    )
    request_unanswered_minutes: float = Field(
        default=10,
        gt=0,
        description="A cancel or refund request unanswered this long, for a platform that "
        "states no auto-agree deadline.",
    )
    request_margin_minutes: float = Field(
        default=5,
        ge=0,
        description="How long before a platform's stated auto-agree deadline an unanswered "
        "request is flagged.",
    )
    not_completed_hours: float = Field(
        default=48, gt=0, description="An order not completed this long after it was created."
    )
    disabled: frozenset[AnomalyRule] = Field(
        default=frozenset(), description="Rules not evaluated, by name (e.g. unmapped_sku)."
    )


class RetentionSettings(BaseModel):
    """The ``[retention]`` table: how many days work already done is kept (0: for ever);
    orders and their event logs are always kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_minutes: float = Field(
        default=60, ge=0, description="How often one worker purges; 0: never (purge by hand)."
    )
    inbox_days: float = Field(
        default=7, ge=0, description="Processed (done or discarded) inbox rows."
    )
    deliveries_days: float = Field(default=7, ge=0, description="Subscriber updates delivered.")
    payloads_days: float = Field(
        default=30, ge=0, description="The raw platform payloads kept with logged events."
    )
    changes_days: float = Field(
        default=2, ge=0, description="The feed of order changes the board follows."
    )
    batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Rows deleted per transaction."
    )


class AuthorizationSettings(BaseModel):
    """The ``[authorization]`` table: how stores' platform credentials are kept and renewed
    (``WAIMAI_AUTHORIZATION_KEYS``, comma-separated, overrides ``keys``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[SecretStr] = Field(
        default_factory=list,
        description="Fernet keys sealing credentials at rest: the first seals, every one "
        "unseals (a new key goes first, the old one stays until `auth rekey` has run).",
    )
    refresh_ahead_minutes: float = Field(
        default=60, gt=0, le=43_200, description="Credentials this close to expiry are renewed."
    )
    interval_seconds: float = Field(
        default=60, ge=0, description="How often one worker renews what is due; 0: never."
    )
    retry_seconds: float = Field(
        default=30,
        gt=0,
        description="The first wait after a renewal the platform could not "
        "answer; doubled on each failure in a row.",
    )
    retry_max_seconds: float = Field(
        default=1800, gt=0, description="The longest wait between renewal attempts."
    )
    state_minutes: float = Field(
        default=15, gt=0, le=1440, description="How long an authorization link stays usable."
    )

    @field_validator("keys")
    @classmethod
    def _fernet_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            check_key(key.get_secret_value())
        return keys

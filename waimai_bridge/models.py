"""The canonical vocabulary every plugin speaks (SPEC §4 and §6).

These pydantic models are the source of truth of the contracts: the JSON Schemas in
``waimai_bridge/contracts/`` are generated from them (``python -m waimai_bridge.contracts``)
and a test proves the two agree. Money is always integer fen; times are integer epoch
milliseconds, so a contract never depends on time-zone or float formatting.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from waimai_bridge.bounds import (
    MAX_ID_LENGTH,
    MAX_INT64,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    Count,
    EpochMs,
    Fen,
    Id,
    Name,
    SkuCode,
    Text,
)
from waimai_bridge.untrusted import MAX_FORM_FIELDS, decode_json

CONTRACT_VERSION = "1.6"
"""Version of the contracts in ``waimai_bridge/contracts/``; a plugin must match the major."""

NonEmpty = Annotated[str, Field(min_length=1)]


class ContractModel(BaseModel):
    """Base of every model that crosses a hook boundary: closed, immutable, revalidated."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        revalidate_instances="always",
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )


class PlatformState(IntEnum):
    """A platform order state of the baseline table (SPEC §4.1)."""

    CREATED = 10
    ACCEPTED = 12
    CANCELLED = 14
    INVALIDATED = 15
    FORCE_INVALIDATED = 17
    COMPLETED = 18
    CANCEL_REQUESTED = 20
    CANCEL_WITHDRAWN = 21
    CANCEL_REJECTED = 22
    CANCEL_AGREED = 23
    REFUND_REQUESTED = 30
    REFUND_WITHDRAWN = 31
    REFUND_REJECTED = 32
    REFUND_AGREED = 33
    RIDER_AWAITING_PICKUP = 53
    RIDER_AT_STORE = 54
    RIDER_DELIVERING = 55
    RIDER_DELIVERED = 56

    @property
    def label(self) -> str:
        """The lower-case name used in the HTTP API (``created``, ``rider_at_store`` …)."""
        return self.name.lower()


class OrderState(StrEnum):
    """The chain's own order state (SPEC §4.2, the ``order.state`` of seed 000)."""

    PAID = "paid"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    DELIVERING = "delivering"
    COMPLETED = "completed"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    CANCELLED = "cancelled"


class RiderState(StrEnum):
    """Where the rider is (SPEC §4.3); an order has none before the first rider event."""

    AWAITING_PICKUP = "awaiting_pickup"
    AT_STORE = "at_store"
    DELIVERING = "delivering"
    DELIVERED = "delivered"


class KitchenStep(StrEnum):
    """A step of the chain's own kitchen, reported by its own channel (SPEC §4.4)."""

    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"


class Action(StrEnum):
    """What the chain's own system can ask a platform to do (SPEC §4.4)."""

    CONFIRM = "confirm"
    CANCEL = "cancel"
    AGREE_CANCEL = "agree_cancel"
    REJECT_CANCEL = "reject_cancel"
    AGREE_REFUND = "agree_refund"
    REJECT_REFUND = "reject_refund"
    MEAL_READY = "meal_ready"
    ACCEPT = "accept"
    START_PREPARING = "start_preparing"
    MARK_READY = "mark_ready"


class Capability(StrEnum):
    """A hook a plugin implements; the manifest lists exactly the ones it implements."""

    PARSE_EVENT = "parse_event"
    MAP_STATE = "map_state"
    PRICE_BREAKDOWN = "price_breakdown"
    OUTBOUND_ACTION = "outbound_action"
    PULL_EVENTS = "pull_events"
    CONFIRM_PULL = "confirm_pull"
    FETCH_ORDER = "fetch_order"
    VERIFY_ACTION = "verify_action"
    ORDER_DETAILS = "order_details"
    AUTHORIZE_URL = "authorize_url"
    EXCHANGE_CODE = "exchange_code"
    REFRESH_CREDENTIALS = "refresh_credentials"


class ActionOutcome(StrEnum):
    """How a platform answered an outbound action."""

    DONE = "done"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    UNKNOWN = "unknown"
    """The call may have reached the platform and nothing tells whether it took effect (a
    time-out after the request was sent, a connection reset): settled by ``verify_action``
    where the plugin has it, else retried as transient."""


# --------------------------------------------------------------------------- inbound


class PluginConfig(ContractModel):
    """A plugin's validated configuration, handed to every hook that talks to the platform."""

    platform: NonEmpty
    public_base_url: str = Field(description="Where platforms reach the bridge, no trailing slash.")
    settings: dict[str, Any] = Field(
        repr=False, description="The ``[platforms.NAME]`` table, valid against config_schema."
    )
    stores: dict[str, dict[str, Any]] = Field(
        repr=False,
        description="Store id → that store's ``NAME`` table, valid against store_config_schema.",
    )

    access_tokens: dict[str, Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=dict,
        repr=False,
        description="Store id → the access token the bridge holds for that store (obtained "
        "through the authorization hooks, 1.6); a store absent here uses its binding's "
        "static token, if any.",
    )

    def store_for(self, key: str, value: object) -> str | None:
        """The store whose binding has ``key`` equal to ``value`` (compared as strings)."""
        wanted = str(value)
        for store_id, binding in self.stores.items():
            if key in binding and str(binding[key]) == wanted:
                return store_id
        return None


class InboundRequest(ContractModel):
    """A push as it reached ``/webhooks/{platform}[/{kind}]``, before anything was trusted."""

    method: str = Field(pattern=r"^[A-Z]+$")
    url: str = Field(description="The public URL the platform called: public_base_url + path.")
    kind: str | None = Field(description="The ``{kind}`` path segment, if the URL has one.")
    query: list[tuple[str, str]] = Field(description="Query parameters in arrival order.")
    headers: dict[str, str] = Field(description="Headers, names in lower case.")
    body: bytes = Field(description="The raw body (base64 in JSON).")
    received_at_ms: EpochMs

    def decode_form(self) -> list[tuple[str, str]]:
        """The body decoded as ``application/x-www-form-urlencoded`` (one decoding pass);
        raises ``ValueError`` when it is not UTF-8, its escapes do not decode as UTF-8, or
        it holds more than :data:`~waimai_bridge.untrusted.MAX_FORM_FIELDS` fields."""
        return parse_qsl(
            self.body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )

    def decode_json(self) -> Any:
        """The body decoded as JSON; raises ``ValueError`` when it is not JSON, or JSON no
        database can hold (:func:`waimai_bridge.untrusted.decode_json`)."""
        return decode_json(self.body)


class Reply(ContractModel):
    """The HTTP answer the platform expects."""

    status: int = Field(default=200, ge=200, le=599)
    content_type: str = "application/json"
    body: str


class NativeEvent(ContractModel):
    """One platform message, decoded and trusted, not yet mapped to the baseline."""

    platform: str = Field(min_length=1, max_length=32)
    store_id: Id = Field(description="The chain's own store id, resolved from the config.")
    store_inferred: bool = Field(
        default=False,
        description=(
            "The push names no store, so store_id is the plugin's best guess: the core uses "
            "the store of the platform order instead when it knows the order."
        ),
    )
    platform_order_id: Id = Field(description="The platform's order id, always a string.")
    native_code: Id = Field(description="A code of the plugin's native-code table.")
    idempotency_key: str = Field(min_length=1, max_length=MAX_KEY_LENGTH)
    platform_time_ms: EpochMs = Field(description="The platform's own time of the change.")
    payload: dict[str, Any] = Field(description="The decoded message, as the platform sent it.")


class ChannelNotice(ContractModel):
    """A push saying a store's authorization of the chain's app changed (1.6)."""

    store_id: Id
    authorized: bool = Field(
        description="false: the store withdrew the app's authorization (its channel is "
        "unauthorized until authorized again); true: authorized again."
    )


class ParsedPush(ContractModel):
    """What ``parse_event`` makes of a push: the reply to send and the events it carried."""

    reply: Reply
    events: list[NativeEvent]
    notices: list[ChannelNotice] = Field(
        default_factory=list,
        max_length=100,
        description="Changes of stores' authorization the push announces (1.6).",
    )


# --------------------------------------------------------------------------- mapping


class RefundedItem(ContractModel):
    """A line a cancel or refund gives money back for (kept in the event's JSON)."""

    name: Name
    quantity: Count
    sku_code: SkuCode | None = None
    platform_sku_id: SkuCode | None = None
    amount_fen: Fen | None = Field(default=None, description="Refund for this line, when stated.")


class StateChange(ContractModel):
    """What ``map_state`` makes of a native event (SPEC §4.1)."""

    state: PlatformState | None = Field(
        description="The baseline state; null: no platform state (a kitchen step, or kept in "
        "the log and ignored by the state machine)."
    )
    kitchen_step: KitchenStep | None = Field(
        default=None,
        description="A kitchen step of the chain's own channel; it only moves fulfilment forward.",
    )
    partial: bool = False
    refund_amount_fen: Fen | None = None
    refunded_items: list[RefundedItem] = Field(default_factory=list)
    reason: Text | None = None


class Event(NativeEvent, StateChange):
    """The canonical event the state machine folds: a native event and its state change."""

    @classmethod
    def of(cls, native: NativeEvent, change: StateChange) -> Event:
        """Join a native event and its state change."""
        return cls(**native.model_dump(), **change.model_dump())


# --------------------------------------------------------------------------- money


class PriceItem(ContractModel):
    """One order line of the price breakdown (SPEC §6)."""

    sku_code: SkuCode | None = Field(
        description="The merchant's own code, as the platform sends it."
    )
    platform_sku_id: SkuCode | None
    name: Name
    quantity: Count
    unit_original: Fen
    unit_paid: Fen
    product_id: SkuCode | None = Field(
        default=None, description="The chain's product, from the SKU mapping; null when unmapped."
    )


class PriceBreakdown(ContractModel):
    """The ``price`` object of an order (SPEC §6); every figure in fen."""

    items: list[PriceItem]
    original_amount: Fen
    packaging_fee: Fen
    delivery_fee: Fen
    merchant_discount: Fen
    platform_discount: Fen
    user_paid: Fen
    commission: Fen | None = Field(
        description="The platform's commission in fen; null when the payload does not state it."
    )
    merchant_income: int | None = Field(
        ge=-MAX_INT64 - 1,
        le=MAX_INT64,
        description=(
            "商家实收 as the platform states it, in fen; null when the payload does not state "
            "it (never computed by the core)."
        ),
    )


class OrderDetails(ContractModel):
    """What an order shows a store's staff beyond its price (1.5): the platform's number
    of the order within the store's day, and the customer's remark."""

    day_seq: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="The platform's day sequence number (当日流水号).",
    )
    remark: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)] | None = Field(
        default=None,
        description="The customer's remark (备注), at most 500 characters; null when none.",
    )


# --------------------------------------------------------------------------- outbound


class ActionRequest(ContractModel):
    """An outbound action for ``outbound_action`` to perform on the platform."""

    action_id: Id
    action: Action
    platform_order_id: Id
    store_id: Id
    reason: Text | None = None
    attempt: Count = Field(description="1 for the first platform call, then 2, 3 …")


class ActionResult(ContractModel):
    """How the platform answered: done, rejected with its code and message, or transient."""

    outcome: ActionOutcome
    code: str | None = Field(
        default=None,
        max_length=MAX_ID_LENGTH,
        description="The platform's code, as it sends it (a plugin shortens a longer one).",
    )
    message: Text | None = Field(
        default=None, description="The platform's words (a plugin shortens longer ones)."
    )

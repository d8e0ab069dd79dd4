"""The plugin API: everything a platform plugin may import from the core, and nothing else.

Semantic versioning applies to this module and to the contracts in
``waimai_bridge/contracts/`` (``CONTRACT_VERSION``). A plugin imports from here only::

    from waimai_bridge.plugin_api import hookimpl, NativeEvent, ParsedPush, Reply, BadSignature
"""

from __future__ import annotations

from waimai_bridge.authorization import (
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
)
from waimai_bridge.bounds import (
    MAX_ID_LENGTH,
    MAX_INT32,
    MAX_INT64,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SKU_LENGTH,
    MAX_TEXT_LENGTH,
)
from waimai_bridge.details import shown_details
from waimai_bridge.errors import (
    BadSignature,
    PlatformError,
    PlatformRejected,
    PushRefused,
    TransientPlatformError,
    UndecodablePush,
    UnknownStore,
)
from waimai_bridge.hookspecs import hookimpl
from waimai_bridge.manifest import Manifest, NativeCode
from waimai_bridge.manifest_file import read_manifest
from waimai_bridge.models import (
    CONTRACT_VERSION,
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    Capability,
    ChannelNotice,
    InboundRequest,
    KitchenStep,
    NativeEvent,
    OrderDetails,
    ParsedPush,
    PlatformState,
    PluginConfig,
    PriceBreakdown,
    PriceItem,
    RefundedItem,
    Reply,
    StateChange,
)
from waimai_bridge.money import yuan_to_fen
from waimai_bridge.pulled import (
    MAX_PULLED,
    Confirmed,
    FetchedOrder,
    OrderRef,
    PulledEvents,
    PullReceipt,
    PullRequest,
)
from waimai_bridge.untrusted import UNREADABLE, decode_json, describe

__all__ = [
    "CONTRACT_VERSION",
    "MAX_ID_LENGTH",
    "MAX_INT32",
    "MAX_INT64",
    "MAX_KEY_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PULLED",
    "MAX_SKU_LENGTH",
    "MAX_TEXT_LENGTH",
    "UNREADABLE",
    "Action",
    "ActionOutcome",
    "ActionRequest",
    "ActionResult",
    "AuthorizationRequest",
    "AuthorizationStart",
    "BadSignature",
    "Capability",
    "ChannelNotice",
    "CodeExchange",
    "Confirmed",
    "Credentials",
    "CredentialsRefresh",
    "FetchedOrder",
    "InboundRequest",
    "KitchenStep",
    "Manifest",
    "NativeCode",
    "NativeEvent",
    "OrderDetails",
    "OrderRef",
    "ParsedPush",
    "PlatformError",
    "PlatformRejected",
    "PlatformState",
    "PluginConfig",
    "PriceBreakdown",
    "PriceItem",
    "PullReceipt",
    "PullRequest",
    "PulledEvents",
    "PushRefused",
    "RefundedItem",
    "Reply",
    "StateChange",
    "TransientPlatformError",
    "UndecodablePush",
    "UnknownStore",
    "decode_json",
    "describe",
    "hookimpl",
    "read_manifest",
    "shown_details",
    "yuan_to_fen",
]

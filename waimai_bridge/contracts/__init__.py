"""The JSON Schemas (Draft 2020-12) every plugin's inputs and outputs are checked against.

The schemas are files in this folder, shipped in the wheel. They are generated from the
canonical models (the source of truth) by ``python -m waimai_bridge.contracts``; a test
fails when a file differs from what the models generate, and another proves the schema and
the model accept and refuse the same documents.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from waimai_bridge.authorization import (
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
)
from waimai_bridge.manifest import Manifest
from waimai_bridge.models import (
    CONTRACT_VERSION,
    ActionRequest,
    ActionResult,
    ContractModel,
    Event,
    InboundRequest,
    NativeEvent,
    OrderDetails,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    StateChange,
)
from waimai_bridge.pulled import (
    Confirmed,
    FetchedOrder,
    OrderRef,
    PulledEvents,
    PullReceipt,
    PullRequest,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"

MODELS: dict[str, type[ContractModel]] = {
    "manifest": Manifest,
    "inbound-request": InboundRequest,
    "plugin-config": PluginConfig,
    "parsed-push": ParsedPush,
    "native-event": NativeEvent,
    "state-change": StateChange,
    "event": Event,
    "price-breakdown": PriceBreakdown,
    "order-details": OrderDetails,
    "action-request": ActionRequest,
    "action-result": ActionResult,
    "pull-request": PullRequest,
    "pulled-events": PulledEvents,
    "pull-receipt": PullReceipt,
    "confirmed": Confirmed,
    "order-ref": OrderRef,
    "fetched-order": FetchedOrder,
    "authorization-request": AuthorizationRequest,
    "authorization-start": AuthorizationStart,
    "code-exchange": CodeExchange,
    "credentials": Credentials,
    "credentials-refresh": CredentialsRefresh,
}
"""Contract name → the model its schema is generated from."""


def filename(name: str) -> str:
    """The file that holds contract ``name``."""
    return f"{name}.schema.json"


def generate(name: str) -> dict[str, Any]:
    """The schema of contract ``name`` as the models define it now."""
    model = MODELS[name]
    body = model.model_json_schema(mode="validation")
    return {
        "$schema": DIALECT,
        "$id": f"urn:waimai-bridge:contract:{CONTRACT_VERSION}:{name}",
        "$comment": f"Generated from {model.__module__}.{model.__name__} by "
        "`python -m waimai_bridge.contracts`; do not edit by hand.",
        **body,
    }


def render(schema: dict[str, Any]) -> str:
    """The text a schema is stored as."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@cache
def load(name: str) -> dict[str, Any]:
    """The shipped schema of contract ``name``."""
    if name not in MODELS:
        raise KeyError(f"no contract named {name!r}; contracts: {', '.join(sorted(MODELS))}")
    text = resources.files(__name__).joinpath(filename(name)).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def reference_validator(name: str) -> Draft202012Validator:
    """The reference (pure-Python) validator of contract ``name``: for load time and tests."""
    return Draft202012Validator(load(name))

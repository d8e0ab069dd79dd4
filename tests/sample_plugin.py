"""A small, complete platform plugin for tests, whose manifest and answers a test can bend."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from waimai_bridge.plugin_api import (
    ActionOutcome,
    ActionRequest,
    ActionResult,
    InboundRequest,
    NativeEvent,
    ParsedPush,
    PlatformState,
    PluginConfig,
    Reply,
    StateChange,
    hookimpl,
)

NAME = "sample"

MANIFEST: dict[str, Any] = {
    "name": NAME,
    "display_name": "Sample platform",
    "version": "1.0.0",
    "contract_version": "1.0",
    "capabilities": ["parse_event", "map_state", "price_breakdown", "outbound_action"],
    "actions": ["confirm", "cancel"],
    "config_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["secret"],
        "properties": {
            "secret": {"type": "string", "minLength": 1, "writeOnly": True},
            "api_base": {"type": "string", "default": "https://api.sample.test/"},
            "app_id": {"type": ["string", "integer"], "pattern": "^[0-9]+$"},
        },
    },
    "store_config_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["shop_id"],
        "properties": {"shop_id": {"type": ["string", "integer"]}},
    },
    "native_codes": [
        {"code": "new", "name": "order paid", "maps_to": [10]},
        {"code": "accepted", "name": "merchant accepted", "maps_to": [12]},
        {"code": "refund", "name": "refund step", "maps_to": [30, 33]},
        {"code": "nudge", "name": "user reminder", "maps_to": [], "note": "not a state"},
    ],
}

PRICE: dict[str, Any] = {
    "items": [
        {
            "sku_code": "SKU-1",
            "platform_sku_id": "991",
            "name": "rice",
            "quantity": 2,
            "unit_original": 1200,
            "unit_paid": 1000,
        }
    ],
    "original_amount": 3000,
    "packaging_fee": 100,
    "delivery_fee": 500,
    "merchant_discount": 300,
    "platform_discount": 100,
    "user_paid": 2600,
    "commission": 200,
    "merchant_income": 1800,
}


def manifest(**changes: Any) -> dict[str, Any]:
    """The sample manifest with top-level keys changed (a key set to ``...`` is dropped)."""
    result = copy.deepcopy(MANIFEST)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def native_event(**changes: Any) -> NativeEvent:
    """A native event of the sample platform."""
    fields: dict[str, Any] = {
        "platform": NAME,
        "store_id": "S001",
        "platform_order_id": "3084512398765432101",
        "native_code": "new",
        "idempotency_key": "sample:req-1",
        "platform_time_ms": 1_716_181_234_000,
        "payload": {"orderId": "3084512398765432101"},
    }
    fields.update(changes)
    return NativeEvent(**fields)


class SamplePlugin:
    """A plugin object; each answer can be replaced by a function of the hook's arguments."""

    def __init__(
        self,
        manifest: dict[str, Any] | None = None,
        **answers: Callable[..., Any],
    ) -> None:
        self._manifest = MANIFEST if manifest is None else manifest
        self._answers = answers

    def _answer(self, hook: str, default: Callable[..., Any], **arguments: Any) -> Any:
        return self._answers.get(hook, default)(**arguments)

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return self._manifest

    @hookimpl
    def parse_event(
        self, platform: str, request: InboundRequest, config: PluginConfig
    ) -> ParsedPush | None:
        def default(request: InboundRequest, config: PluginConfig) -> ParsedPush:
            store = config.store_for("shop_id", request.decode_json()["shop"])
            assert store is not None
            return ParsedPush(
                reply=Reply(body='{"ok":true}'), events=[native_event(store_id=store)]
            )

        result: ParsedPush | None = self._answer(
            "parse_event", default, request=request, config=config
        )
        return result

    @hookimpl
    def map_state(self, event: NativeEvent) -> StateChange:
        table = {"new": PlatformState.CREATED, "accepted": PlatformState.ACCEPTED}

        def default(event: NativeEvent) -> StateChange:
            return StateChange(state=table.get(event.native_code))

        result: StateChange = self._answer("map_state", default, event=event)
        return result

    @hookimpl
    def price_breakdown(self, order: NativeEvent, config: PluginConfig) -> dict[str, Any]:
        result: dict[str, Any] = self._answer(
            "price_breakdown", lambda order, config: PRICE, order=order, config=config
        )
        return result

    @hookimpl
    def outbound_action(self, action: ActionRequest, config: PluginConfig) -> ActionResult:
        def default(action: ActionRequest, config: PluginConfig) -> ActionResult:
            return ActionResult(outcome=ActionOutcome.DONE, code="ok")

        result: ActionResult = self._answer(
            "outbound_action", default, action=action, config=config
        )
        return result

"""The plugin config the shipped fixtures in ``fixtures/`` are written for."""

from __future__ import annotations

from typing import Any, Final

from waimai_bridge.plugin_api import PluginConfig

FIXTURE_APP_ID: Final = "6123"
FIXTURE_SECRET: Final = "fixture-meituan-secret-0123456789"
FIXTURE_PUBLIC_BASE_URL: Final = "https://bridge.example.com"
FIXTURE_SETTINGS: Final[dict[str, Any]] = {
    "app_id": FIXTURE_APP_ID,
    "app_secret": FIXTURE_SECRET,
    "api_base": "https://waimaiopen.meituan.com/api/v1/",
    "price_semantics": "discounted",
    "api_timeout_seconds": 10,
}
"""The ``[platforms.meituan]`` table the fixtures are written for."""

FIXTURE_STORES: Final[dict[str, dict[str, Any]]] = {
    "S001": {"app_poi_code": "STORE-001"},
    "S002": {"app_poi_code": "STORE-002", "price_semantics": "original"},
}
"""The store bindings of the fixtures: S002 overrides the price semantics; pushes that
name no store go to S001, the first bound store id."""


def fixture_config(**settings: Any) -> PluginConfig:
    """The fixtures' plugin config, with ``settings`` overriding some of its keys."""
    return PluginConfig(
        platform="meituan",
        public_base_url=FIXTURE_PUBLIC_BASE_URL,
        settings={**FIXTURE_SETTINGS, **settings},
        stores={store: dict(binding) for store, binding in FIXTURE_STORES.items()},
    )

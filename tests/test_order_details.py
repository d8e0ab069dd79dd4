"""The optional hook ``order_details``: its answer is checked against the contract both ways."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sample_plugin import native_event
from tests.test_hook_calls import CONFIG
from waimai_bridge.errors import ContractViolation
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import OrderDetails
from waimai_bridge.plugin_api import hookimpl
from waimai_bridge.plugins import PluginRegistry

MANIFEST: dict[str, Any] = {
    "name": "sample",
    "display_name": "Details only",
    "version": "1.0.0",
    "contract_version": "1.5",
    "capabilities": ["order_details"],
    "actions": [],
    "config_schema": {"type": "object"},
    "store_config_schema": {"type": "object"},
    "native_codes": [],
}


class DetailsPlugin:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return MANIFEST

    @hookimpl
    def order_details(self) -> Any:
        return self.answer


def platform(answer: Any, *, reference: bool) -> Platform:
    registry = PluginRegistry(reference=reference)
    registry.add("sample", DetailsPlugin(answer))
    return registry.platform("sample")


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "reference"])
def test_details_within_the_contract_pass(reference: bool) -> None:
    answer = {"day_seq": 17, "remark": "少辣" * 250}
    read = platform(answer, reference=reference).order_details(native_event(), CONFIG)
    assert read == OrderDetails(day_seq=17, remark="少辣" * 250)
    assert platform(None, reference=reference).order_details(native_event(), CONFIG) is None
    nothing = platform({}, reference=reference).order_details(native_event(), CONFIG)
    assert nothing == OrderDetails(day_seq=None, remark=None)


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "reference"])
@pytest.mark.parametrize(
    ("answer", "path"),
    [
        ({"day_seq": 17, "remark": "辣" * 501}, "$.remark"),
        ({"day_seq": 17, "remark": ""}, "$.remark"),
        ({"day_seq": -1}, "$.day_seq"),
        ({"day_seq": 1_000_001}, "$.day_seq"),
        ({"day_seq": "17"}, "$.day_seq"),
        ({"day_seq": 17, "phone": "13800000000"}, "$.phone"),
    ],
    ids=["long remark", "empty remark", "negative", "too large", "string", "extra field"],
)
def test_details_beyond_the_contract_are_refused(
    answer: dict[str, Any], path: str, reference: bool
) -> None:
    sample = platform(answer, reference=reference)
    with pytest.raises(ContractViolation) as caught:
        sample.order_details(native_event(), CONFIG)
    assert f"plugin 'sample', hook 'order_details', at {path}" in str(caught.value)

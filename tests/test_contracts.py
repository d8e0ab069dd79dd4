"""The shipped JSON Schemas and the canonical models are one contract."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy import BigInteger, Integer, String

from tests.schema_strategies import JSON, from_schema, json_values, paths, replaced
from waimai_bridge import contracts
from waimai_bridge.contracts.__main__ import main as write_contracts
from waimai_bridge.models import PriceBreakdown
from waimai_bridge.store.tables import Base
from waimai_bridge.validation import ContractProblem, conform

NAMES = sorted(contracts.MODELS)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def model_accepts(name: str, document: JSON) -> bool:
    try:
        conform(contracts.MODELS[name], document)
    except ContractProblem:
        return False
    return True


def schema_accepts(name: str, document: JSON) -> bool:
    return bool(contracts.reference_validator(name).is_valid(document))


def stricter_model_is_expected(name: str, path: tuple[str | int, ...], value: JSON) -> bool:
    """The one place the model is stricter than the schema, by design.

    JSON Schema counts ``5.0`` as an integer; the model refuses it, so money and times are
    whole JSON integers on the hot path. Base64 bodies are decoded by the model only.
    """
    if isinstance(value, float) and value.is_integer():
        return True
    return name == "inbound-request" and path == ("body",) and isinstance(value, str)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_schema_is_what_the_model_generates(name: str) -> None:
    shipped = resources.files("waimai_bridge.contracts").joinpath(contracts.filename(name))
    assert json.loads(shipped.read_text(encoding="utf-8")) == contracts.generate(name), (
        f"{contracts.filename(name)} is out of date: run python -m waimai_bridge.contracts"
    )


def test_the_generator_reports_nothing_stale() -> None:
    assert write_contracts(["--check"]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_draft_2020_12(name: str) -> None:
    schema = contracts.load(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_model_accepts_every_document_the_schema_accepts(name: str, data: st.DataObject) -> None:
    document = data.draw(from_schema(contracts.load(name)))
    assert schema_accepts(name, document)
    assert model_accepts(name, document), document


@pytest.mark.parametrize("name", NAMES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_model_and_schema_agree_on_damaged_documents(name: str, data: st.DataObject) -> None:
    document = data.draw(from_schema(contracts.load(name)))
    path = data.draw(st.sampled_from(paths(document)))
    damage = data.draw(st.sampled_from(["replace", "drop", "add"]))
    target = document
    for part in path:
        target = target[part]
    if damage == "replace":
        value = data.draw(json_values)
        damaged = replaced(document, path, value)
    elif damage == "drop" and path and isinstance(path[-1], str):
        value = None
        parent = path[:-1]
        damaged = replaced(document, parent, _without(_at(document, parent), path[-1]))
    elif isinstance(target, dict):
        value = None
        key = data.draw(st.text(min_size=1, max_size=6))
        damaged = replaced(document, path, {**target, key: data.draw(json_values)})
    else:
        return
    by_schema, by_model = schema_accepts(name, damaged), model_accepts(name, damaged)
    if by_schema and not by_model and stricter_model_is_expected(name, path, value):
        return
    assert by_schema == by_model, f"schema says {by_schema}, model says {by_model}: {damaged}"


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if name != key}


def test_integral_float_is_refused_by_the_model_only() -> None:
    document = {
        "items": [],
        **dict.fromkeys(PriceBreakdown.model_fields.keys() - {"items"}, 0),
        "user_paid": 5.0,
    }
    assert schema_accepts("price-breakdown", document)
    with pytest.raises(ContractProblem) as caught:
        conform(PriceBreakdown, document)
    assert caught.value.path == "$.user_paid"


def test_reference_check_names_the_json_path() -> None:
    document = {
        "items": [
            {
                "sku_code": "A",
                "platform_sku_id": None,
                "name": "rice",
                "quantity": 0,
                "unit_original": 100,
                "unit_paid": 100,
            }
        ],
        **dict.fromkeys(PriceBreakdown.model_fields.keys() - {"items"}, 0),
    }
    with pytest.raises(ContractProblem) as by_model:
        conform(PriceBreakdown, document)
    assert by_model.value.path == "$.items[0].quantity"
    assert "got 0" in by_model.value.problem
    errors = list(contracts.reference_validator("price-breakdown").iter_errors(document))
    assert [list(error.absolute_path) for error in errors] == [["items", 0, "quantity"]]


def test_every_contract_ships_in_the_package() -> None:
    folder = resources.files("waimai_bridge.contracts")
    shipped = sorted(
        entry.name for entry in folder.iterdir() if entry.name.endswith(".schema.json")
    )
    assert shipped == sorted(contracts.filename(name) for name in NAMES)


# --------------------------------------------------------------------------- database bounds

DATA_CONTRACTS = ["native-event", "state-change", "event", "price-breakdown", "action-request",
                  "action-result"]  # fmt: skip
"""The contracts whose values the bridge stores."""

COLUMNS = {
    ("native-event", "platform"): "inbox.platform",
    ("native-event", "store_id"): "inbox.store_id",
    ("native-event", "platform_order_id"): "inbox.platform_order_id",
    ("native-event", "native_code"): "inbox.native_code",
    ("native-event", "idempotency_key"): "inbox.idempotency_key",
    ("native-event", "platform_time_ms"): "inbox.platform_time_ms",
    ("event", "platform_time_ms"): "order_events.platform_time_ms",
    ("state-change", "refund_amount_fen"): "order_events.refund_amount_fen",
    ("state-change", "RefundedItem.sku_code"): "sku_mappings.sku_code",
    ("state-change", "RefundedItem.quantity"): "order_items.quantity",
    ("price-breakdown", "PriceItem.sku_code"): "order_items.sku_code",
    ("price-breakdown", "PriceItem.platform_sku_id"): "order_items.platform_sku_id",
    ("price-breakdown", "PriceItem.product_id"): "order_items.product_id",
    ("price-breakdown", "PriceItem.quantity"): "order_items.quantity",
    ("price-breakdown", "PriceItem.unit_original"): "order_items.unit_original_fen",
    ("price-breakdown", "PriceItem.unit_paid"): "order_items.unit_paid_fen",
    ("action-request", "platform_order_id"): "outbound_actions.platform_order_id",
    ("action-request", "store_id"): "outbound_actions.store_id",
    ("action-request", "attempt"): "outbound_actions.attempts",
    ("action-result", "code"): "outbound_actions.result_code",
}
"""A contract's field (``Model.field`` inside ``$defs``) → the column its value ends up in."""


def field_schema(name: str, field: str) -> dict[str, Any]:
    """The schema of one field of a contract, its non-null branch where it may be null."""
    schema = contracts.load(name)
    model, _, own = field.rpartition(".")
    found: dict[str, Any] = (schema["$defs"][model] if model else schema)["properties"][own]
    branches = [branch for branch in found.get("anyOf", [found]) if branch.get("type") != "null"]
    assert len(branches) == 1, (name, field)
    branch: dict[str, Any] = branches[0]
    return branch


def column_bound(column_name: str) -> tuple[str, int]:
    """The keyword and value of the largest value a column holds."""
    table, column = column_name.split(".")
    kind = Base.metadata.tables[table].c[column].type
    if isinstance(kind, String):
        assert kind.length is not None, column_name
        return "maxLength", kind.length
    if isinstance(kind, BigInteger):
        return "maximum", 2**63 - 1
    assert isinstance(kind, Integer), column_name
    return "maximum", 2**31 - 1


@pytest.mark.parametrize(("name", "field"), sorted(COLUMNS))
def test_a_stored_field_is_bounded_by_its_column(name: str, field: str) -> None:
    keyword, bound = column_bound(COLUMNS[name, field])
    assert field_schema(name, field).get(keyword) == bound


def bounded_or_not(schema: Any, where: str = "$") -> list[str]:
    """The strings and integers of a schema without an upper bound, by location."""
    if isinstance(schema, list):
        return [p for i, item in enumerate(schema) for p in bounded_or_not(item, f"{where}[{i}]")]
    if not isinstance(schema, dict):
        return []
    found = [p for key, value in schema.items() for p in bounded_or_not(value, f"{where}.{key}")]
    if "enum" in schema or "const" in schema:
        return found
    if schema.get("type") == "string" and "maxLength" not in schema:
        found.append(where)
    if schema.get("type") == "integer" and "maximum" not in schema:
        found.append(where)
    return found


@pytest.mark.parametrize("name", DATA_CONTRACTS)
def test_every_stored_string_and_integer_has_an_upper_bound(name: str) -> None:
    assert bounded_or_not(contracts.load(name)) == []

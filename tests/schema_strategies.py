"""Hypothesis strategies that draw JSON documents from the contract schemas.

Covers the JSON Schema keywords the generated contracts use (hypothesis-jsonschema does not
work with current hypothesis releases); a keyword it does not know fails loudly, so a new
kind of field cannot slip past the model/schema agreement tests.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

JSON = Any

_HANDLED = {
    "$schema", "$id", "$comment", "$defs", "$ref", "title", "description", "default", "type",
    "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "uniqueItems", "enum", "const", "anyOf", "minimum", "maximum", "minLength",
    "maxLength", "pattern", "format", "propertyNames",
}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
"""Any JSON value."""


def from_schema(
    schema: Mapping[str, Any], root: Mapping[str, Any] | None = None
) -> st.SearchStrategy[JSON]:
    """Documents valid against ``schema`` (``root`` resolves ``#/$defs/…`` references)."""
    root = schema if root is None else root
    unknown = set(schema) - _HANDLED
    if unknown:
        raise NotImplementedError(f"schema keywords not covered: {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return st.deferred(lambda: from_schema(root["$defs"][name], root))
    if "anyOf" in schema:
        return st.one_of([from_schema(branch, root) for branch in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind is None:
        return json_values
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": one}, root) for one in kind])
    return _BY_TYPE[kind](schema, root)


def _object(schema: Mapping[str, Any], root: Mapping[str, Any]) -> st.SearchStrategy[JSON]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    extra = schema.get("additionalProperties", True)
    fixed = st.fixed_dictionaries(
        {name: from_schema(sub, root) for name, sub in properties.items() if name in required},
        optional={
            name: from_schema(sub, root) for name, sub in properties.items() if name not in required
        },
    )
    if extra is False or properties:
        return fixed
    values = json_values if extra is True else from_schema(extra, root)
    names = schema.get("propertyNames")
    keys = st.text(max_size=6) if names is None else from_schema(names, root)
    return st.dictionaries(keys, values, max_size=3)


def _array(schema: Mapping[str, Any], root: Mapping[str, Any]) -> st.SearchStrategy[JSON]:
    if "prefixItems" in schema:
        return st.tuples(*(from_schema(sub, root) for sub in schema["prefixItems"])).map(list)
    items = from_schema(schema.get("items", {}), root)
    return st.lists(
        items,
        min_size=schema.get("minItems", 0),
        max_size=schema.get("maxItems", 3),
        unique_by=(lambda value: repr(value)) if schema.get("uniqueItems") else None,
    )


def _string(schema: Mapping[str, Any], root: Mapping[str, Any]) -> st.SearchStrategy[JSON]:
    if schema.get("format") == "base64url":
        return st.binary(max_size=24).map(lambda raw: base64.urlsafe_b64encode(raw).decode())
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda text: schema.get("minLength", 0) <= len(text) <= schema.get("maxLength", 10**6)
        )
    return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 12))


def _integer(schema: Mapping[str, Any], root: Mapping[str, Any]) -> st.SearchStrategy[JSON]:
    return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))


Builder = Callable[[Mapping[str, Any], Mapping[str, Any]], st.SearchStrategy[JSON]]

_BY_TYPE: dict[str, Builder] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": lambda schema, root: st.floats(allow_nan=False, allow_infinity=False),
    "boolean": lambda schema, root: st.booleans(),
    "null": lambda schema, root: st.none(),
}


def paths(document: JSON, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every location in a JSON document, the root included."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def replaced(document: JSON, path: tuple[str | int, ...], value: JSON) -> JSON:
    """A copy of ``document`` with the value at ``path`` replaced."""
    if not path:
        return value
    head, *rest = path
    if isinstance(document, dict):
        return {**document, head: replaced(document[head], tuple(rest), value)}
    copy = list(document)
    copy[int(head)] = replaced(copy[int(head)], tuple(rest), value)
    return copy

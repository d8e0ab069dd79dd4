"""Untrusted JSON is read with every failure a ``ValueError``, and refusals never quote values."""

from __future__ import annotations

import json

import pydantic_core
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from waimai_bridge.models import InboundRequest, PriceItem
from waimai_bridge.untrusted import MAX_FORM_FIELDS, MAX_JSON_DEPTH, decode_json, describe


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (nested(100_000), "nests deeper"),  # the C parser's RecursionError
        (nested(MAX_JSON_DEPTH + 1), "nests deeper"),  # deep enough for pydantic's serialiser
        ('{"a": ' * 40 + "1" + "}" * 40, "nests deeper"),
        ('{"total": NaN}', "NaN"),
        ("[-Infinity]", "Infinity"),
        ('{"total": 1e400}', "too large"),
        ("9" * 5000, "digits"),
        ('{"name": "\\ud800"}', "surrogate"),
        ('{"\\udfff": 1}', "surrogate"),
        ('{"a": ', "Expecting"),
        ('{"name": "a\\u0000b"}', "NUL"),
        ('{"a\\u0000": 1}', "NUL"),
    ],
    ids=["deeper-than-the-stack", "deeper-than-the-bound", "objects", "nan", "infinity",
         "overflowing-float", "long-integer", "surrogate-value", "surrogate-key", "truncated",
         "nul-value", "nul-key"],
)  # fmt: skip
def test_unusable_json_is_a_value_error_saying_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_json(text)
    with pytest.raises(ValueError, match=problem):
        decode_json(text.encode("utf-8", "surrogatepass"))


def test_json_within_the_bounds_reads_as_json_does() -> None:
    document = {
        "a": [1, 2.5, None, True, "宫保鸡丁 \x01"],
        "b": json.loads(nested(MAX_JSON_DEPTH - 1)),
    }
    text = json.dumps(document, ensure_ascii=False)
    assert decode_json(text) == decode_json(text.encode()) == json.loads(text)


def test_bytes_that_are_not_utf8_are_a_value_error() -> None:
    with pytest.raises(ValueError, match="utf-8"):
        decode_json(b'{"a": "\xff\xfe"}')


@given(st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_any_text_is_json_or_a_value_error(text: str | bytes) -> None:
    assert_json_or_value_error(text)


@given(st.lists(st.sampled_from(list('[]{}":,1e9-.\\u"d8a0 ')), max_size=80).map("".join))
def test_any_json_like_text_is_json_or_a_value_error(text: str) -> None:
    assert_json_or_value_error(text)


def assert_json_or_value_error(text: str | bytes) -> None:
    """What is read is what :mod:`json` reads, and serialises again (for the database)."""
    try:
        value = decode_json(text)
    except ValueError as refused:
        problem = str(refused)
    else:
        assert value == json.loads(text)
        assert pydantic_core.to_json(value)
        return
    assert problem


def test_a_refused_model_value_is_described_by_its_field_not_its_value() -> None:
    secret_looking = "王先生 13800001111 " * 40
    with pytest.raises(ValidationError) as refused:
        PriceItem(
            sku_code="S" * 300, platform_sku_id=None, name=secret_looking, quantity=10**12,
            unit_original=1, unit_paid=1,
        )  # fmt: skip
    words = describe(refused.value)
    assert words == (
        "sku_code: String should have at most 128 characters; "
        "name: String should have at most 500 characters; "
        "quantity: Input should be less than or equal to 2147483647"
    )
    assert "13800001111" not in words
    assert describe(ValueError("x" * 1000)).endswith("…")
    assert len(describe(ValueError("x" * 1000))) == 300


@pytest.mark.parametrize(
    ("body", "why"),
    [(b"a=%FF", "can't decode"), (b"\xff=1", "can't decode"),
     (b"&".join([b"a=1"] * (MAX_FORM_FIELDS + 1)), "Max number of fields")],
    ids=["an escape that is not UTF-8", "a body that is not UTF-8", "too many fields"],
)  # fmt: skip
def test_a_form_that_cannot_be_read_whole_is_a_value_error(body: bytes, why: str) -> None:
    request = InboundRequest(
        method="POST", url="https://bridge.example.com/webhooks/x", kind=None, query=[],
        headers={}, body=body, received_at_ms=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match=why):
        request.decode_form()


def test_a_form_within_the_bounds_is_read() -> None:
    body = "&".join(["k=v"] * (MAX_FORM_FIELDS - 1) + ["name=%E4%BD%A0"]).encode()
    request = InboundRequest(
        method="POST", url="https://bridge.example.com/webhooks/x", kind=None, query=[],
        headers={}, body=body, received_at_ms=1,
    )  # fmt: skip
    assert request.decode_form()[-1] == ("name", "你")

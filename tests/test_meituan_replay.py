"""A Meituan push replayed or past its bounds: a parameter the sig does not cover changes
neither the push's key nor what it says, and too many or too long parameters are refused
with 400 before the sig is computed, the refusal quoting no value at length.

Through the core's contract-checked hook calls, with the helpers of ``test_meituan_push``.
"""

from __future__ import annotations

from typing import Any

import pytest
from waimai_bridge_meituan.examples import ORDER_ID, T_PAID, logistics, order, refund

from tests.test_meituan_push import body, only_event, refused
from waimai_bridge.errors import BadSignature, UndecodablePush
from waimai_bridge.hookcalls import Platform

REMIND = {"order_id": ORDER_ID, "remind_time": str(T_PAID + 900), "remind_id": "1"}
NO_REFUND_ID = {key: value for key, value in refund("apply").items() if key != "pictures"}
del NO_REFUND_ID["refund_id"]


@pytest.mark.parametrize(
    ("kind", "params"), [("reminder", REMIND), ("refund", NO_REFUND_ID)], ids=["hash", "fallback"]
)
@pytest.mark.parametrize("added", ["zz=", "refund_id=", "img_data=anything", "img_data="])
def test_a_parameter_the_sig_does_not_cover_changes_neither_key_nor_payload(
    meituan: Platform, kind: str, params: dict[str, Any], added: str
) -> None:
    # a replay under a new key: an empty parameter passes the community sig that skips
    # empty values, and img_data is never signed (platforms.md §3.2, §4.2)
    first = only_event(meituan, kind, body(kind, params))
    again = only_event(meituan, kind, body(kind, params) + b"&" + added.encode())
    assert again.idempotency_key == first.idempotency_key
    assert again.payload == first.payload


def test_an_empty_parameter_meituan_signed_is_kept_and_not_in_the_key(meituan: Platform) -> None:
    with_empty = only_event(meituan, "reminder", body("reminder", {**REMIND, "note": ""}))
    without = only_event(meituan, "reminder", body("reminder", REMIND))
    assert with_empty.payload["note"] == ""
    assert with_empty.idempotency_key == without.idempotency_key
    # an empty value signed officially cannot be dropped by a replay either
    dropped = body("reminder", {**REMIND, "note": ""}).replace(b"note=&", b"")
    assert refused(meituan, "reminder", dropped)[:3] == (BadSignature, 401, 703)


def params_pairs(count: int) -> dict[str, str]:
    return {f"p{index}": "1" for index in range(count)}


@pytest.mark.parametrize(
    ("content", "method", "words"),
    [
        (body("order_paid", {**order(), **params_pairs(300)}), "POST", "more than"),
        (body("order_paid", order()) + b"&p=1" * 100_000, "POST", "more than"),
        (body("order_paid", {**order(), **params_pairs(5000)}), "GET", "more than"),
        (body("order_paid", order(caution="辣" * 400_000)), "POST", "'caution' is longer"),
        (body("order_paid", {**order(), "x" * 100: "1"}), "POST", "not a form"),
        (body("order_paid", order()) + b"&caution2=%ff", "POST", "UTF-8"),
    ],
    ids=["300-fields", "100000-fields", "5000-query-pairs", "1mb-field", "long-name", "bad-utf8"],
)
def test_a_push_of_too_many_or_too_long_parameters_is_refused_with_400(
    meituan: Platform, content: bytes, method: str, words: str
) -> None:
    kind, status, code, exc = refused(meituan, "order_paid", content, method)
    assert (kind, status, code) == (UndecodablePush, 400, 705)
    assert words in exc.message
    assert len(exc.message) < 200


@pytest.mark.parametrize(
    ("kind", "params", "words"),
    [
        ("logistics", {**logistics(10, T_PAID), "logistics_status": "9" * 100_000}, "known"),
        ("order_paid", order(app_poi_code="S" * 100_000), "app_poi_code"),
        ("refund", refund("x" * 100_000, res_type="x"), "known"),
    ],
    ids=["logistics-status", "store-code", "notify-type"],
)
def test_a_refusal_never_quotes_a_value_at_length(
    meituan: Platform, kind: str, params: dict[str, Any], words: str
) -> None:
    _, status, _, exc = refused(meituan, kind, body(kind, params))
    assert status == 400
    assert words in exc.message
    assert len(exc.message) < 200

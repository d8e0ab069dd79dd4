"""Amounts are integer fen; yuan become fen exactly, never through float arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waimai_bridge.money import yuan_to_fen


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [
        (0.1 + 0.2, 30),
        (0.3, 30),
        ("0.1", 10),
        ("37.9", 3790),
        (37.9, 3790),
        (-30.1, -3010),
        (4.48, 448),
        (68, 6800),
        (Decimal("25.42"), 2542),
        ("  5.0 ", 500),
        (1.15, 115),
        (0.29, 29),
    ],
)
def test_yuan_become_exact_fen(yuan: str | int | float | Decimal, fen: int) -> None:
    assert yuan_to_fen(yuan) == fen


def test_float_arithmetic_would_have_lost_a_fen() -> None:
    assert int(0.29 * 100) == 28  # the mistake this function exists to avoid
    assert yuan_to_fen(0.29) == 29


@pytest.mark.parametrize("bad", ["0.305", 0.305, "abc", "", "NaN", float("inf"), True])
def test_what_is_not_a_whole_fen_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="not a"):
        yuan_to_fen(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_every_fen_amount_survives_a_trip_through_a_float_of_yuan(fen: int) -> None:
    assert yuan_to_fen(fen / 100) == fen
    assert yuan_to_fen(str(Decimal(fen) / 100)) == fen


# --------------------------------------------------------------------------- hostile amounts

INT64 = (-(2**63), 2**63 - 1)

huge_exponents = st.from_regex(r"\A[+-]?[0-9]{1,30}(\.[0-9]{0,30})?[eE][+-]?[0-9]{1,25}\Z")
anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**400).map(lambda n: n * 7)
    | st.floats()
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | huge_exponents
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@given(anything)
def test_whatever_it_is_given_it_answers_fen_in_a_bigint_or_value_error(value: object) -> None:
    try:
        fen = yuan_to_fen(value)  # type: ignore[arg-type]
    except ValueError as refused:
        problem = str(refused)
    else:
        assert isinstance(fen, int)
        assert INT64[0] <= fen <= INT64[1]
        return
    assert len(problem) < 200


@given(st.integers(min_value=INT64[0], max_value=INT64[1]))
def test_every_bigint_of_fen_written_in_yuan_comes_back(fen: int) -> None:
    assert yuan_to_fen(str(Decimal(fen).scaleb(-2))) == fen
    assert yuan_to_fen(Decimal(fen).scaleb(-2)) == fen


@given(st.one_of(st.integers(max_value=INT64[0] - 1), st.integers(min_value=INT64[1] + 1)))
def test_fen_beyond_a_bigint_are_refused(fen: int) -> None:
    with pytest.raises(ValueError, match="too large"):
        yuan_to_fen(str(Decimal(fen).scaleb(-2)))


@pytest.mark.parametrize(
    "bad",
    ["1e26", 1e26, "1e999999", "-1e999999999999999999999", "9" * 5000, 10**30, 10**5000,
     "92233720368547758.08", Decimal("sNaN"), Decimal("1e99999999"), float("nan"), "-inf",
     [[[]]], {"yuan": 1}, None, b"12", "１２", "1_000", "0x10"],
    ids=lambda value: type(value).__name__,
)  # fmt: skip
def test_what_a_bigint_of_fen_cannot_hold_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match=r"not a|too large"):
        yuan_to_fen(bad)  # type: ignore[arg-type]

"""Amounts are integer fen; yuan become fen exactly, never through float arithmetic."""

from __future__ import annotations

import re
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


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_every_fen_amount_survives_a_trip_through_a_float_of_yuan(fen: int) -> None:
    """Up to 15 digits a float of yuan reads back as its repr, whatever its binary value."""
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


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(-(2**63), "-92233720368547758.08"), (2**63 - 1, "92233720368547758.07")],
)
def test_the_ends_of_a_bigint_of_fen_are_amounts(fen: int, yuan: str) -> None:
    assert yuan_to_fen(yuan) == fen
    assert yuan_to_fen(Decimal(yuan)) == fen


def test_an_amount_is_read_from_at_most_64_characters() -> None:
    padded = "0" * 60 + "1.00"
    assert len(padded) == 64
    assert yuan_to_fen(padded) == 100
    with pytest.raises(ValueError, match="not an amount of money"):
        yuan_to_fen("0" + padded)


def test_a_fraction_above_a_millionth_is_refused_however_many_digits_it_takes() -> None:
    just_above = "0.000001" + "0" * 30 + "1"
    with pytest.raises(ValueError, match="not a whole number of fen"):
        yuan_to_fen(just_above)
    assert yuan_to_fen("12.340000" + "0" * 30) == 1234


REFUSALS: dict[str, tuple[object, str]] = {
    "null": (None, "null is not an amount of money"),
    "a list": ([[[]]], "a list is not an amount of money"),
    "a dict": ({"yuan": 1}, "a dict is not an amount of money"),
    "text": ("abc", "'abc' is not an amount of money"),
    "40 characters shown whole": ("x" * 38, f"'{'x' * 38}' is not an amount of money"),
    "41 characters cut to 40": ("x" * 39, f"'{'x' * 38}… is not an amount of money"),
    "an exponent no decimal holds": (
        "1e999999999999999999999",
        "'1e999999999999999999999' is not an amount of money",
    ),
    "infinity": (float("inf"), "inf is not an amount of money"),
    "not a number": (Decimal("NaN"), "Decimal('NaN') is not an amount of money"),
    "a fraction of a fen": ("0.305", "'0.305' yuan is not a whole number of fen"),
    "too many yuan": ("1e26", "'1e26' is too large an amount of yuan"),
    "a fen past a bigint": (
        "92233720368547758.08",
        "'92233720368547758.08' is too large an amount of yuan",
    ),
    "an integer of 64 bits": (2**63, "9223372036854775808 is too large an amount of yuan"),
    "an integer of 65 bits": (2**64, "an integer of 65 bits is too large an amount of yuan"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_a_refusal_names_the_value_shortly_and_says_why(case: str) -> None:
    """The message shows the value as given (its repr, cut to 40 characters; the type of
    what is no amount at all; the size of an integer too long to show)."""
    value, message = REFUSALS[case]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        yuan_to_fen(value)  # type: ignore[arg-type]

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

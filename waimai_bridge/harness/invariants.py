"""The price-breakdown invariants every platform's orders keep (SPEC §6).

Each invariant is a name, what it says, and a function giving, for a breakdown, the
problems as ``(field, expected, actual)``. Only universal rules are here: ones that hold
for every platform whatever it states. ``user_paid == original_amount − discounts`` is
*not* one of them (platforms deduct more than the two discounts, e.g. a store subscription
that changes what ``price`` means), nor is any formula for ``merchant_income``, which the
platform states and the core never computes. A fixture may waive an invariant with a
reason (``expect.price_waivers``); the waiver is reported as a skip with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from waimai_bridge.models import PriceBreakdown

Problem = tuple[str, str, str]
"""A broken invariant: the field, what it should be (with the reason), what it is."""


def _non_negative(price: PriceBreakdown) -> Iterator[Problem]:
    figures = {
        "original_amount": price.original_amount,
        "packaging_fee": price.packaging_fee,
        "delivery_fee": price.delivery_fee,
        "merchant_discount": price.merchant_discount,
        "platform_discount": price.platform_discount,
        "user_paid": price.user_paid,
        "commission": price.commission,
    }
    for index, item in enumerate(price.items):
        figures[f"items[{index}].unit_original"] = item.unit_original
        figures[f"items[{index}].unit_paid"] = item.unit_paid
    for name, value in figures.items():
        if value is not None and value < 0:
            yield name, "≥ 0 fen", str(value)


def _items_total(price: PriceBreakdown) -> Iterator[Problem]:
    items = sum(item.unit_original * item.quantity for item in price.items)
    total = items + price.packaging_fee + price.delivery_fee
    if total != price.original_amount:
        yield (
            "original_amount",
            f"{total} (Σ items unit_original × quantity {items} + packaging_fee "
            f"{price.packaging_fee} + delivery_fee {price.delivery_fee})",
            str(price.original_amount),
        )


def _unit_paid(price: PriceBreakdown) -> Iterator[Problem]:
    for index, item in enumerate(price.items):
        if item.unit_paid > item.unit_original:
            yield (
                f"items[{index}].unit_paid",
                f"≤ unit_original {item.unit_original}",
                str(item.unit_paid),
            )


def _at_most_original(field: str) -> Callable[[PriceBreakdown], Iterator[Problem]]:
    def check(price: PriceBreakdown) -> Iterator[Problem]:
        value: int | None = getattr(price, field)
        if value is not None and value > price.original_amount:
            yield field, f"≤ original_amount {price.original_amount}", str(value)

    return check


def _discounts(price: PriceBreakdown) -> Iterator[Problem]:
    discounts = price.merchant_discount + price.platform_discount
    if discounts > price.original_amount:
        yield (
            "merchant_discount + platform_discount",
            f"≤ original_amount {price.original_amount}",
            f"{discounts} ({price.merchant_discount} + {price.platform_discount})",
        )


@dataclass(frozen=True)
class Invariant:
    """One rule of the price breakdown."""

    name: str
    rule: str
    problems: Callable[[PriceBreakdown], Iterator[Problem]]


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("non_negative", "every amount is a non-negative number of fen "
              "(merchant_income excepted: a platform may state a loss)", _non_negative),
    Invariant("items_total", "Σ(unit_original × quantity) + packaging_fee + delivery_fee "
              "== original_amount", _items_total),
    Invariant("unit_paid", "each item's unit_paid ≤ its unit_original", _unit_paid),
    Invariant("user_paid", "user_paid ≤ original_amount", _at_most_original("user_paid")),
    Invariant("discounts", "merchant_discount + platform_discount ≤ original_amount",
              _discounts),
    Invariant("commission", "commission ≤ original_amount (when stated)",
              _at_most_original("commission")),
    Invariant("merchant_income", "merchant_income ≤ original_amount (when stated)",
              _at_most_original("merchant_income")),
)  # fmt: skip
"""Every universal invariant, by name (the names ``price_waivers`` may use)."""

INVARIANT_NAMES = frozenset(invariant.name for invariant in INVARIANTS)


def broken(price: PriceBreakdown, waived: frozenset[str] = frozenset()) -> list[Problem]:
    """The problems of ``price`` under every invariant not waived."""
    return [
        problem
        for invariant in INVARIANTS
        if invariant.name not in waived
        for problem in invariant.problems(price)
    ]

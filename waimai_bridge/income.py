"""What a store earns from an order after refunds (SPEC §6), in fen, and the rule that found
it.

The platform states ``merchant_income`` (商家实收); the core never computes it. After a
refund, where the platform states the income again (a later read of the order gives another
``merchant_income``), that figure; otherwise a rule: a full refund (the order ``refunded``)
leaves no income; a partial one reduces the income by the refunded share of what the user
paid, rounded half up to the fen. A loss (a negative stated income) is never turned into a
gain by a refund, and the income after refunds never exceeds the income first stated.
"""

from __future__ import annotations

from enum import StrEnum

from waimai_bridge.models import OrderState


class IncomeRule(StrEnum):
    """How an order's income after refunds was found."""

    STATED = "stated"
    """No refund: the platform's ``merchant_income``, as stated."""
    FULL_REFUND = "full_refund"
    """Refunded in full: no income."""
    REFUND_SHARE = "refund_share"
    """Partly refunded: the stated income less the refunded share of what the user paid."""
    UNSTATED = "unstated"
    """The platform states no income: nothing to go on."""
    PLATFORM = "platform"
    """Refunded, and the platform states the income again: its figure."""


def net_income(
    *, merchant_income: int | None, user_paid: int | None, refunded: int, state: str,
    restated: int | None = None,
) -> tuple[int | None, IncomeRule]:  # fmt: skip
    """The income after refunds (fen) and its rule, from the stated income, what the user
    paid, the amount refunded so far, the order's state and the income the platform stated
    last (``restated``, when it read the order again)."""
    by_rule = _by_rule(merchant_income, user_paid, refunded, state)
    refunds = refunded > 0 or state == OrderState.REFUNDED
    if merchant_income is None or restated is None or restated == merchant_income or not refunds:
        return by_rule
    return min(restated, merchant_income), IncomeRule.PLATFORM


def _by_rule(
    merchant_income: int | None, user_paid: int | None, refunded: int, state: str
) -> tuple[int | None, IncomeRule]:
    if merchant_income is None:
        return None, IncomeRule.UNSTATED
    if state == OrderState.REFUNDED:
        return min(0, merchant_income), IncomeRule.FULL_REFUND
    if refunded <= 0:
        return merchant_income, IncomeRule.STATED
    if merchant_income <= 0:
        return merchant_income, IncomeRule.REFUND_SHARE  # a loss stays a loss
    if not user_paid or refunded >= user_paid:  # all of it (or a share of nothing known)
        return 0, IncomeRule.REFUND_SHARE
    reduction = (merchant_income * refunded * 2 + user_paid) // (user_paid * 2)  # half up
    return merchant_income - reduction, IncomeRule.REFUND_SHARE

"""What this plugin assumes about Eleme without a source to confirm it — all in one place.

Every constant below is marked [G] in ``platforms.md`` (or rests on a [G] fact there): the
platform's behaviour was inferred, not read in a document or an SDK. Each one is a single
switch, so a correction found against the live sandbox is a one-line change here. The
native-code table's ``note`` column (``manifest.json``) marks the [G] rows of the type
table (the delivery types' ``state`` values, types 45, 217 and 218).
"""

from __future__ import annotations

from typing import Final

REDELIVERY_KEEPS_REQUEST_ID: Final = True
"""A push Eleme sends again carries the same ``requestId``, which is therefore the
idempotency key (platforms.md §1.4: retry behaviour not confirmed)."""

ITEM_ACTIVITY_PRICES_ARE_UNIT_PRICES: Final = True
"""``userPrice``/``shopPrice`` of an order line are unit prices, and 0 means "no item
activity, use ``price``" (platforms.md §5: labels confirmed, meaning not)."""

REFUND_LINE_PRICE_IS_UNIT_PRICE: Final = True
"""``goodsList[].price`` of a cancel/refund message is the unit price of the refunded line,
so the line's refund is ``price × quantity`` (platforms.md §1.8: exact semantics not
confirmed)."""

HONGBAO_IS_PLATFORM_FUNDED: Final = True
"""``hongbao`` (红包, negative) is a discount the platform funds, not the merchant (not
stated anywhere; every real payload found has 0)."""

SHOP_MESSAGE_ORDER_PREFIX: Final = "shop:"
"""Shop-level messages (91, 93, 100, 105) name no order; they are logged under the pseudo
order id ``shop:<shopId>`` so that they stay visible in the event log."""

MEAL_READY_SUPPORTED: Final = False
"""No 出餐 (meal ready) action of the shop open platform's order API was found
(platforms.md §2.3), so ``meal_ready`` is not among the plugin's actions."""

TRANSIENT_ERROR_CODES: Final = frozenset({"SERVER_ERROR", "EXCEED_LIMIT"})
"""API error codes worth retrying (platforms.md §2.4 lists the codes, not their nature):
a server fault and the rate limit. Every other code — ``BIZ_*``, ``VALIDATION_FAILED``,
``INVALID_SIGNATURE``, ``UNAUTHORIZED``, ``INVALID_TIMESTAMP`` … — is final, but for the
"already" answers below, which are done."""

ORDER_STATE_ERROR: Final = "BIZ_ORDER_STATUS_ERROR"
"""The business error of an order action the order's state forbids (platforms.md §2.4 names
only the ``BIZ_*`` family, not this code). The four answers below are this code with a
message naming the state the order or its request is already in; they count as ``done`` for
the action that would have put it there, so a repeated call (a retry after a time-out, a
worker that died mid-call) ends done (SPEC §4.4). Both the code and the words must match:
any other wording stays a final rejection, never a wrong ``done``."""

ALREADY_CONFIRMED: Final = (ORDER_STATE_ERROR, "订单已接单")
"""Eleme's answer to ``confirmOrderLite`` on an order already accepted [G]."""

ALREADY_CANCELLED: Final = (ORDER_STATE_ERROR, "订单已取消")
"""Eleme's answer to an action on an order already cancelled [G]: done for
``cancelOrderLite``, a rejection for the others."""

REQUEST_ALREADY_AGREED: Final = (ORDER_STATE_ERROR, "退单已同意")
"""Eleme's answer to ``agreeRefundLite`` / ``disagreeRefundLite`` on a cancel or refund
application already agreed [G]: done for the agreeing actions."""

REQUEST_ALREADY_REJECTED: Final = (ORDER_STATE_ERROR, "退单已拒绝")
"""Eleme's answer to ``agreeRefundLite`` / ``disagreeRefundLite`` on an application already
rejected [G]: done for the rejecting actions."""

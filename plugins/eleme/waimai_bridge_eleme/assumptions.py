"""What this plugin assumes about Eleme without a source to confirm it — all in one place.

Every constant below is marked [G] in ``platforms.md`` (or rests on a [G] fact there): the
platform's behaviour was inferred, not read in a document or an SDK; the few confirmed ones
kept here beside the guesses they go with say so and name their source. Each one is a single
switch, so a correction found against the live sandbox is a one-line change here. The
native-code table's ``note`` column (``manifest.json``) marks the [G] rows of the type
table (the delivery types' ``state`` values, types 45, 217 and 218).
"""

from __future__ import annotations

from collections.abc import Mapping
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


# --------------------------------------------------------------------------- pull, fetch, verify
# Confirmed (platforms.md §1.4, [S-E5g]; the SDKs [S-E1e], [S-E3], [S-E4]): the method names,
# getPushFailMsg brings the core fulfilment types and wants them confirmed with
# confirmPullMsg, both called with an EMPTY token ("token 必须为空" otherwise) and taking the
# app as their input; getNonReachedOMessages(appId) takes any valid shop token and answers a
# list of OMessage (the push envelope); getOrder(orderId) answers the OOrder, the very
# structure of a type-10 message. The SDKs wrap the msgNew input in one parameter,
# ``msgQueryRequest`` / ``msgConfirmRequest``. Everything below is not confirmed.

PUSH_FAIL_TYPES: Final = frozenset({10, 12, 14, 15, 17, 217, 218})
"""The types ``eleme.msgNew.getPushFailMsg`` brings (confirmed, [S-E5g]); the others come
through ``eleme.message.getNonReachedOMessages``."""

PUSH_FAIL_QUERY_PARAM: Final = "msgQueryRequest"
"""The parameter of ``getPushFailMsg`` (the Python and PHP SDKs' name, [S-E4]; confirmed)."""

PUSH_FAIL_QUERY_APP_ID: Final = "appId"
"""The one field the plugin puts in ``msgQueryRequest``: the app's id (the doc says only
that the input is the app, "入参是应用维度(appId)"; the field's name is unconfirmed). No
time or page field is sent: unconfirmed fields could be refused, and the list holds only
what is not confirmed yet."""

PUSH_FAIL_MESSAGE_ID: Final = "msgId"
"""Unconfirmed: ``getPushFailMsg`` answers a list of messages, each the push envelope (the
OMessage fields: requestId, type, appId, message, shopId, timestamp, userId, signature) plus
this field, the id ``confirmPullMsg`` takes (a string or a number, sent back as received)."""

CONFIRM_PARAM: Final = "msgConfirmRequest"
"""The parameter of ``confirmPullMsg`` (the Python and PHP SDKs' name, [S-E4]; confirmed)."""

CONFIRM_IDS_FIELD: Final = "msgIds"
"""Unconfirmed: ``msgConfirmRequest`` is ``{"appId": …, "msgIds": [...]}``, and an answer
without an error means every id was taken (its ``result`` is not read)."""

NON_REACHED_ONCE_PER_TOKEN: Final = True
"""Unconfirmed: ``getNonReachedOMessages`` hands each message it could not push once to each
token that asks, and nothing confirms them (there is no confirm method for it). Its answer
holds the app's messages: the plugin keeps those of the pulled store's shop and drops the
others, which that shop's own pull (its own token) gets. The plugin does not rely on "once":
a message handed again has its push's key, and the inbox keeps one event per key. A crash
between such a pull and its commit loses what it brought (no confirmation to withhold)."""

ORDER_NOT_FOUND: Final = "BIZ_ORDER_NOT_EXIST"
"""Unconfirmed: the error code of ``eleme.order.getOrder`` for an order id the platform does
not know (an answer with ``result: null`` and no error counts the same)."""

ORDER_STATUS_CODES: Final[Mapping[str, str | None]] = {
    "pending": None,
    "unprocessed": None,
    "valid": "12",
    "refunding": "12",
    "settled": "18",
    "invalid": "15",
}
"""An OOrder's ``status`` (OOrderStatus, confirmed [S-E1f]) → the push type of the baseline
state a fetched order is put in (None: only the full order, which is created). The status
messages' ``state`` is that same enum (valid in 12, settled in 18, invalid in 14/15/17:
platforms.md §1.7), the rest is unconfirmed: ``refunding`` (a cancel or refund request is
open) implies the order was accepted, since before acceptance a user cancels outright (14);
``invalid`` is told as 15 (订单置为无效), which the state machine treats as 14 and 17."""

REQUEST_STATUS_AFTER: Final[Mapping[str, str]] = {"agreed": "successful", "rejected": "rejected"}
"""Unconfirmed: an OOrder's ``refundStatus`` (OOrderRefundStatus, confirmed [S-E1f]) once the
merchant agreed (``agreeRefundLite``) or rejected (``disagreeRefundLite``) its cancel or
refund request; ``applied``/``arbitrating`` while it is open, ``noRefund`` when there is none
(or the user withdrew it)."""


# --------------------------------------------------------------------------- authorization
# Confirmed (platforms.md §2.1, [S-E1g], [S-E4d]; the Java and Python SDKs' oauth clients):
# the authorize page {base}/authorize and the token endpoint {base}/token; token requests
# form-encoded with Basic auth of app key and secret; the grants authorization_code (code,
# redirect_uri, client_id), refresh_token (refresh_token) and client_credentials; an answer's
# fields access_token, token_type, expires_in (a number), refresh_token, and on failure error
# and error_description; push type 100 {shopId, appId, appName, relieveOAuthTime} when a shop
# withdraws its authorization (§1.5, [S-E5e]). Everything below is not confirmed.

AUTHORIZE_SCOPE: Final = "all"
"""The ``scope`` the authorize link asks for: the SDKs take it from the caller, and only a
third-party OAuth library's Eleme entry names a value (``all``)."""

TOKEN_LIFETIME_IN_SECONDS: Final = True
"""``expires_in`` counts seconds from the answer, as in OAuth2 (RFC 6749 §5.1); the SDKs read
it as a number without saying its unit, and no document found states the tokens' lifetimes
(the renewal schedule therefore follows each answer, not a constant)."""

FALLBACK_TOKEN_LIFETIME_SECONDS: Final = 86_400
"""The lifetime assumed for a token whose answer has no usable ``expires_in``: one day, short
on purpose, so that such a token is renewed early rather than let expire unnoticed."""

OAUTH_REFUSALS: Final = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
    }
)
"""The token endpoint's error codes that are final (RFC 6749 §5.2; Eleme's own list is not
published): a used, expired or revoked code or refresh token is ``invalid_grant``, a wrong
app key or secret ``invalid_client``. A refused refresh makes the store's channel
unauthorized. ``server_error``, ``temporarily_unavailable`` and any other code answered with
HTTP 5xx are retried."""

REFRESH_TOKENS_ROTATE: Final = True
"""A refresh may answer a new refresh token, which then replaces the old one (the Java SDK
keeps the one of each answer); an answer without one leaves the old one in use."""

REFRESH_WITH_SCOPE: Final = False
"""A refresh sends ``grant_type`` and ``refresh_token`` only, as the Java SDK does (the
Python SDK adds a ``scope``); the token keeps the scope the owner consented to."""

CLIENT_CREDENTIALS_RENEW_BY_ASKING_AGAIN: Final = True
"""A client-credentials token (a single-shop app) is renewed by asking for a new one with
``grant_type=client_credentials``; such an answer needs no refresh token."""

INVALID_TOKEN_ERROR: Final = "UNAUTHORIZED"
"""The API's error code for an access token it does not accept (unknown, expired, revoked):
``UNAUTHORIZED`` is among the codes the SDKs handle (platforms.md §2.4), its use for tokens
is a guess. An action answered so is rejected; the fake answers it."""

NO_REAUTHORIZATION_PUSH: Final = True
"""Eleme is not known to push anything when a shop authorizes the app again: the channel is
active again once the new consent's code is exchanged (``waimai-bridge auth url``)."""

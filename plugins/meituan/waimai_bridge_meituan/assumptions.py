"""Every platform fact the plugin relies on that the research could not fully confirm.

The tags are those of ``research/platforms.md``: [C] confirmed, [P] partial (one community
source), [G] guess. Confirmed facts used alongside them are kept here too when the plugin
would have to change with them. Anything marked [P] or [G] is to be checked against a live
Meituan sandbox; the rest of the plugin imports these names and hard-codes none of them.
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------- pushes

ACK_BODY: Final = '{"data":"ok"}'
"""What Meituan expects back from a push, and from the console's empty URL check
(platforms.md §3.1, §3.3) [C]."""

REFUSAL_SHAPE: Final = "ng"
"""A refused push is answered ``{"data":"ng","error":{"code":…,"msg":…}}``, the shape of
Meituan's own API errors (§4.4). [G]: Meituan documents no refusal body for pushes; any
answer other than ``{"data":"ok"}`` counts as a failure (easy-meituan answers
``{"data":"error",…}``, §3.3)."""

REFUSAL_CODES: Final[dict[str, int]] = {
    "missing_parameter": 701,  # 缺少参数
    "unknown_app": 702,  # app_id不存在
    "bad_sig": 703,  # 签名验证错误
    "unknown_store": 704,  # 无权限操作此数据
    "bad_format": 705,  # 参数格式错误
}
"""The codes of Meituan's API error table (§4.4) the plugin reuses in its push refusals [G]."""

DOUBLE_ENCODED_FIELDS: Final = frozenset(
    {
        "caution",
        "detail",
        "extras",
        "wm_poi_name",
        "wm_poi_address",
        "wm_poi_phone",
        "recipient_address",
        "incmp_modules",
        "order_tag_list",
        "recipient_name",
        "backup_recipient_phone",
        "recipient_address_desensitization",
        "invoice_title",
        "poi_receive_detail",
        "poi_receive_detail_yuan",
    }
)
"""Fields Meituan URL-encodes inside the form value, so that one more ``unquote_plus`` is
needed after the normal form decoding, before JSON parsing and before the sig check
(§3.1, the easy-meituan list) [C]. Whether the list is complete for every push kind, and
whether GET pushes are encoded the same way, is [G] (§6.3, §6.4): hence the sig variants
below. ``food`` of the partial-refund push is plain JSON (§3.1) [P]."""

SIG_VARIANTS: Final = ("listed", "as_received", "all")
"""The readings of a push whose sig is tried, in this order: the listed fields decoded once
more (§3.1) [C]; every value as the form decoding left it, for a push whose listed fields
were not double-encoded [G]; every value decoded once more, as kuangcao's SDK does (§3.1)
[C]. The first reading the sig matches is the one kept, so the sig itself tells which
values Meituan signed; each reading needs the secret."""

SIG_SKIPS_EMPTY_VALUES: Final = (False, True)
"""The official SDK signs empty values as ``k=`` [C]; one community util leaves them out
[P] (§3.2, §4.2). Which of the two Meituan's servers use to sign *pushes* is not confirmed,
so both are tried, the official way first. The second lets anyone add an empty parameter to
a signed push unnoticed, so the rule that keeps a replay out is: when only the second
matches, the empty values are dropped as unsigned (``push.verified_reading``), and no
idempotency key depends on an empty value (``push.idempotency_key``). Empty means absent
everywhere the plugin reads a push, so nothing a push says changes either way."""

JSON_FIELDS: Final = frozenset(
    {"detail", "extras", "poi_receive_detail", "poi_receive_detail_yuan", "food"}
)
"""Form fields that hold JSON the plugin reads (§3.4, §3.7) [C]; empty means absent (a field
only pushed when the app subscribed to it, §3.4)."""

SYSTEM_PARAMS: Final = ("app_id", "timestamp", "sig")
"""System parameters of every push and API call (§3.1, §4.1) [C]."""

TIME_FIELDS: Final = ("utime", "time", "ctime", "operate_time")
"""Where a push states the time of its change, most precise first, all in epoch seconds
(SPEC §4.1; §3.4 utime/ctime, §3.6 ctime, §3.8 time) [C]; ``operate_time`` of the
self-delivery push is [P] (§3.8). Without one, the system ``timestamp`` is used. The refund
pushes state only ``ctime``, the time of the *application* (§3.6): an agree, reject or
withdrawal is therefore placed at its application's time, after it by the fold's rank; the
state machine gives the same order state either way (SPEC §5)."""

MILLISECONDS_FROM: Final = 100_000_000_000
"""A time at or above this is taken as already in milliseconds [G]: every source gives
10-digit seconds (§3.4, §3.8), this only guards against a 13-digit value."""

IDENTITY_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "order_paid": ("order_id",),
    "order_confirmed": ("order_id",),
    "order_completed": ("order_id",),
    "order_cancelled": ("order_id",),
    "refund": ("order_id", "refund_id", "notify_type"),
    "partial_refund": ("order_id", "refund_id", "notify_type"),
    "logistics": ("order_id", "logistics_status", "time"),
    "refund_status": ("order_id", "refund_id", "refund_status"),
}
"""What identifies one push of a kind, for its idempotency key: Meituan repeats pushes and
sends no message id (§3.3) [P]. An order is paid, confirmed, completed and cancelled once;
a refund application (``refund_id``) is applied for, agreed, rejected or withdrawn once
each [G]; a rider status can recur (a re-dispatched order), so its time is part of it [G].
The system ``timestamp`` is left out on purpose: a redelivery is signed again at its own
time [G]. Kinds not listed here (settlement, reminder) are keyed by a hash of their
non-empty signed parameters without ``timestamp`` and ``sig``: that a redelivery repeats
every other value is [G]."""

KIND_CODES: Final[dict[str, str | None]] = {
    "order_paid": None,
    "order_confirmed": None,
    "order_completed": None,
    "order_cancelled": None,
    "refund": "notify_type",
    "partial_refund": "notify_type",
    "logistics": "logistics_status",
    "refund_status": None,
    "settlement": None,
    "reminder": None,
}
"""The push kinds (one console URL each, §3.1 [C]) and the field that tells apart the pushes
sharing a URL; the native code is the kind, or ``kind.value``. ``settlement`` (推送订单结算信息)
is [P] and ``reminder`` (推送催单消息) has [G] fields (§3.1, §5)."""

STORE_CODE_FIELD: Final = "app_poi_code"
"""The merchant's own store code in the order pushes (§3.4) [C]. The cancel (§3.5), refund
(§3.6, §3.7), refund-status and logistics (§3.8) pushes carry no store code [C: go-meituan's
request models list none]; see :func:`waimai_bridge_meituan.push.resolve_store`."""

NOTIFY_TYPE_BY_RES_TYPE: Final[dict[str, str]] = {
    "0": "apply",
    "1": "reject",
    "2": "agree",
    "3": "reject",
    "4": "agree",
    "5": "agree",
    "6": "agree",
    "7": "cancelRefund",
    "8": "cancelRefundComplaint",
}
"""A refund push whose ``notify_type`` is missing or not one the manifest knows is read from
its ``res_type`` (§3.6: 0 等待处理, 1 商家驳回, 2 商家同意, 3 客服驳回, 4 客服帮商家同意,
5 超时自动同意, 6 系统自动确认, 7 用户取消申请, 8 用户取消申诉) [G]: the partial-refund
``notify_type`` values are only partly confirmed (§3.7, §6.2), and the research advises
accepting unknown values."""

CANCELLED_BEFORE_ACCEPTANCE: Final = frozenset({"1001", "1002", "1101", "1102", "2001"})
"""Cancel ``reason_code`` values that mean the merchant never accepted the order (14
cancelled): 1001 超时未确认, 1002 未支付, 1101 支付中取消, 1102 商家确认前取消 (§3.5), 2001
商家超时接单 (go-meituan's merchant reason list). Every other code (1103 用户退款取消, 12xx 客服
取消, 1301 其他, the merchant codes 2002–2016, an unknown code) is read as a cancel after
acceptance (17 force_invalidated). [G]: inferred from the codes' names; the push states no
order status. Both states end the order the same way in the state machine (SPEC §5)."""

LOGISTICS_STATES: Final[dict[str, int | None]] = {
    "0": None,
    "5": None,
    "10": 53,
    "15": 54,
    "20": 55,
    "40": 56,
    "100": None,
}
"""``logistics_status`` → baseline state (§3.8 [C], SPEC §4.1); None: kept, ignored."""

# --------------------------------------------------------------------------- prices

BOX_FEE_PER_LINE: Final = True
"""A ``detail`` line's packaging is ``box_num × box_price`` (§3.4) [G]: whether ``box_num``
counts boxes for the whole line or per unit is not documented; the realistic sample
(``original_price`` = lines + boxes + shipping) fits both with quantity 1."""

UNSPLIT_DISCOUNT_IS_MERCHANTS: Final = True
"""When an ``extras`` entry states ``reduce_fee`` but not its split (``mt_charge`` /
``poi_charge`` need the 活动费用分摊 subscription, §3.4) and ``poi_receive_detail`` gives no
split either, the whole discount is counted as the merchant's [G]."""

ITEM_ACTIVITY_TYPES: Final = frozenset({"17"})
"""``extras`` types that are item activities, whose ``reduce_fee`` is what the activity took
off the lines' prices (§3.4: 17 折扣商品) [C for the name, G for the rest]. Under
``price_semantics = "original"`` a line's ``price`` still holds it, so a line without
``actual_price`` gets ``unit_paid`` = ``price`` less its share (spread over such lines by
amount: which line an activity was on is not stated [G]). Other types (满减, coupons, 买赠 …)
are read as order-level discounts, never in a line's price (§5) [C for 满减/coupons]."""

# --------------------------------------------------------------------------- outbound API

TRANSIENT_CODES: Final = frozenset({"700", "711"})
"""API error codes worth retrying: 700 系统错误, 711 接口调用过于频繁 (流控) (§4.4) [C for the
meaning, G for the retry policy]. Every other code (701–708, 806, 808, 1001, 1002, 1022,
4001 …) is final, but for the "already" answers below, which are done."""

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
"""How long one API call may take when ``api_timeout_seconds`` is not configured [G]."""

DEFAULT_CANCEL_REASON_CODE: Final = "2007"
"""``reason_code`` of a merchant cancel whose reason matches no row below: 2007
其他原因 (Meituan's default when no code is sent, go-meituan's merchant reason list, §3.5)."""

CANCEL_REASON_CODES: Final[dict[str, tuple[str, ...]]] = {
    "2008": ("店铺太忙", "太忙", "busy"),
    "2009": ("商品已售完", "售完", "售罄", "sold out"),
    "2010": ("地址无法配送", "无法配送", "address"),
    "2011": ("店铺已打烊", "打烊", "closed"),
    "2012": ("联系不上用户", "联系不上", "unreachable"),
    "2013": ("重复订单", "duplicate"),
}
"""The documented mapping of a ``cancel`` action's free-text reason to Meituan's merchant
``reason_code`` (§3.5): a reason starting with a code 2001–2016 uses it; otherwise the
first row whose words occur in the reason (case-insensitive); otherwise 2007."""

MERCHANT_REASON_CODES: Final = frozenset(str(code) for code in range(2001, 2017))
"""The merchant cancel codes Meituan accepts (§3.5, go-meituan) [C]."""

DEFAULT_AGREE_REASON: Final = "同意退款"
DEFAULT_REJECT_REASON: Final = "商家拒绝退款"
"""``order/refund/agree`` and ``order/refund/reject`` require a ``reason`` (§4.3) [C]; these
are sent when the action has none."""

PARTIAL_REFUND_APPLICATIONS_USE_REFUND_ENDPOINTS: Final = True
"""A user's partial-refund application is agreed or rejected with ``order/refund/agree`` /
``order/refund/reject`` like a full one (§4.3) [G]: no separate endpoint was found."""

ORDER_STATE_CHANGED_CODE: Final = "808"
"""808 操作失败(如订单状态已变更) (§4.4) [C for the code and its meaning]: the answer to an
action the order's state no longer allows. Which words its ``msg`` carries for a repeat is
[G]: the four answers below are 808 with a message naming the state the order or its refund
is already in; they count as ``done`` for the action that would have put it there, so a
repeated call (a retry after a time-out, a worker that died mid-call) ends done (SPEC §4.4).
Both the code and the words must match: any other 808 stays a final rejection, never a wrong
``done``."""

ALREADY_CONFIRMED: Final = (ORDER_STATE_CHANGED_CODE, "订单已确认")
"""Meituan's answer to ``order/confirm`` on an order already confirmed [G]."""

ALREADY_CANCELLED: Final = (ORDER_STATE_CHANGED_CODE, "订单已取消")
"""Meituan's answer to an action on an order already cancelled [G]: done for
``order/cancel``, a rejection for the others."""

REFUND_ALREADY_AGREED: Final = (ORDER_STATE_CHANGED_CODE, "退款已同意")
"""Meituan's answer to ``order/refund/agree`` / ``order/refund/reject`` on a refund
application already agreed [G]: done for the agreeing actions."""

REFUND_ALREADY_REJECTED: Final = (ORDER_STATE_CHANGED_CODE, "退款已驳回")
"""Meituan's answer to ``order/refund/agree`` / ``order/refund/reject`` on a refund
application already rejected [G]: done for the rejecting actions."""

# --------------------------------------------------------------------------- reading an order

ORDER_DETAIL_PATH: Final = "order/getOrderDetail"
"""GET ``order_id``, ``is_mt_logistics``: the full order, the fields of the order pushes
(§4.3) [C]."""

IS_MT_LOGISTICS: Final = "0"
"""``is_mt_logistics`` sent with ``order/getOrderDetail``: 1 adds Meituan Delivery's details
(rider, logistics times), which the plugin does not read; 0 leaves them out (go-meituan's
request model: "当需要查询美团配送的详细信息时，此字段需上传且取值为1") [P]."""

DETAIL_DATA_SHAPES: Final = ("object", "list_of_one")
"""How ``order/getOrderDetail`` answers: ``{"data": {…order…}}`` with its JSON-valued
fields (``detail``, ``extras``, ``poi_receive_detail`` …) as JSON text and its numbers as
JSON numbers (the official Java SDK parses ``data`` as an object and ``detail``/``extras``
as JSON strings, §4.3 "JSON not URL-encoded") [C]; go-meituan declares ``data`` a list of
orders, so a list holding the one order is read too [P]. A JSON field sent already parsed
is taken as it is [G]."""

ORDER_STATUS_PATH: Final = "order/viewstatus"
"""GET ``order_id``: ``{"data": {"status": N}}``, the order's status (§3.4 codes; the
official Java SDK reads ``data.status``) [C]."""

ORDER_STATUS_CODES: Final[dict[str, str]] = {
    "2": "order_paid",
    "3": "order_paid",
    "4": "order_confirmed",
    "6": "order_confirmed",
    "8": "order_completed",
    "9": "order_cancelled",
}
"""An order ``status`` → the order push that brings an order to it (2 向商家推送订单, 4 商家已
确认, 8 订单已完成, 9 订单已取消: §3.4 [C]; 3 商家已收到 and 6 已配送 of the older SDK [C], read
as not yet confirmed and confirmed [G]). 1 用户已提交订单 is an order not yet paid nor pushed
to the merchant: the plugin has no order to give for it. Another status is read as unknown."""

PAID_TIME_FIELDS: Final = ("order_send_time", "ctime")
"""When a read order was paid: ``order_send_time`` (用户下单完成支付的时间), else ``ctime``, in
epoch seconds (go-meituan's getOrderDetail model) [P]; ``utime`` is the *last* change."""

STATUS_TIME_FIELDS: Final[dict[str, str]] = {
    "order_confirmed": "order_confirm_time",
    "order_completed": "order_completed_time",
    "order_cancelled": "order_cancel_time",
}
"""When a read order reached its status, epoch seconds (go-meituan's getOrderDetail model)
[P]; 0 or missing: ``utime`` (§3.4) [C], else the time of the read."""

INCOMPLETE_CODE: Final = "-1"
INCOMPLETE_PRICE_MODULES: Final = frozenset({"0", "1", "4", "5", "11", "15"})
"""``incmp_code`` -1 marks an order read whose modules ``incmp_modules`` were degraded
("如不完整，建议尝试重新查询"); 0 商品详情, 1 优惠信息, 4/5 商家对账信息, 11 部分订单基本信息 and 15
替换折扣价为原价 change the prices, so such a read is tried again later (go-meituan's model)
[P]. A degraded read that does not say which modules counts as incomplete."""

REFUND_DETAIL_PATH: Final = "ecommerce/order/getOrderRefundDetail"
REFUND_ORDER_PARAM: Final = "wm_order_id_view"
"""GET ``wm_order_id_view`` (the order id, §3.4): ``{"data": [refund, …]}``, the order's
refund applications, each with ``refund_id``, ``ctime`` and ``res_type`` (the §3.6 values,
:data:`NOTIFY_TYPE_BY_RES_TYPE`) (§4.3 [P], go-meituan's model) [P]: how a refund or cancel
answer is verified. An order without refund applications answers an empty list [G]."""

NO_SUCH_ORDER_CODE: Final = "806"
"""806 不存在此订单 (§4.4) [C]: a read of an order Meituan does not know."""

MEAL_READY_REPEATS_HARMLESSLY: Final = True
"""No read shows 出餐完成 (the order's status stays 4), so a ``meal_ready`` whose answer was
lost is settled by sending ``order/preparationMealComplete`` again while the order is
confirmed and open: Meituan is taken to answer a repeat ok, or with an error saying so [G].
False: it is only retried (``transient``)."""

# --------------------------------------------------------------------------- store authorization

ACCESS_TOKEN_PARAM: Final = "access_token"
"""The system parameter an ISV (服务商) app adds to every API call, signed like the others
(§4.1, §4.2) [C]. A developer app sends none."""

AUTHORIZE_PATH: Final = "oauth/authorize"
TOKEN_PATH: Final = "oauth/token"
"""Below ``api_base``, both signed like every API call (app_id, timestamp, sig). [P]
go-meituan's ``isv`` package (after Meituan's 闪购 ISV guide, open-shangou guide 10686) and a
PHP integration: ``GET oauth/authorize`` with ``app_poi_code`` and ``response_type=token``
(快捷接口) answers a store's tokens at once; ``POST oauth/token`` with
``grant_type=refresh_token`` and ``refresh_token`` renews them."""

CONSENT_PAGE_PARAMS: Final = ("app_poi_code", "response_type", "redirect_uri", "state")
"""The owner's consent page is ``GET oauth/authorize`` with ``response_type=code``, the
store's ``app_poi_code``, ``redirect_uri`` and ``state``, signed, and sends the owner back to
``redirect_uri?code=…&state=…``. [G]: ``response_type=code``, ``redirect_uri`` and ``state``
(handed back as given) are those of Meituan's own OAuth page
(open.waimai.meituan.com/openapi_docs/oauth, ``openapi.waimai.meituan.com/oauth/authorize``,
a 美团 account's consent); that the waimai API host serves such a page for a store, and that
it takes ``app_poi_code`` and the sig, is inferred from the 快捷接口 at the same path."""

CODE_GRANT: Final = "authorization_code"
"""``grant_type`` of a code exchanged at ``oauth/token`` (with ``code`` and ``redirect_uri``)
[G]: the OAuth2 value; the refresh's ``grant_type`` parameter [P] implies more than one."""

TOKEN_OK_STATUS: Final = "0"
"""A token answer is flat: ``status`` (0: success, else Meituan's error code), ``message``,
``access_token``, ``expires_in`` and ``re_expires_in`` (seconds), ``refresh_token``, ``state``
(go-meituan's ``GetAccessTokenResponse`` [P]; the PHP integration checks ``status == 0``
[P]). An answer in the API's error shape ``{"data":"ng","error":{…}}`` (§4.4) is read too
[G]."""

TOKEN_TRANSIENT_CODES: Final = TRANSIENT_CODES
"""Token-endpoint errors worth retrying: the API's 700 and 711 [G: the token endpoint's own
error codes are not documented]. Every other non-zero status refuses for good: the code was
used or expired, the store withdrew its consent, the refresh token expired."""

REFRESH_TOKENS_ROTATE: Final = True
"""A refresh answers a new refresh token, which replaces the old one [G]; an answer without
one keeps the old one."""

FALLBACK_TOKEN_LIFETIME_SECONDS: Final = 86_400
"""The lifetime assumed for an access token answered without ``expires_in`` [G]: a day, so
that it is renewed soon rather than never."""

"""The order board's labels in Chinese and English, and the language a request asks for."""

from __future__ import annotations

from collections.abc import Mapping

ZH = "zh"
EN = "en"

LABELS: Mapping[str, Mapping[str, str]] = {
    ZH: {
        "title": "订单看板",
        "login_title": "登录订单看板",
        "token": "API 令牌",
        "login": "登录",
        "login_error": "令牌无效，请重试。",
        "no_read": "此令牌没有查看订单的 read 权限。",
        "logout": "退出登录",
        "signed_in_as": "当前用户",
        "live": "实时",
        "offline": "重新连接中…",
        "needs_action": "待处理",
        "today": "今日订单",
        "nothing_to_do": "暂无待处理订单",
        "no_orders": "今天还没有订单",
        "store": "门店",
        "channel": "渠道",
        "state": "状态",
        "all": "全部",
        "apply": "筛选",
        "rider": "骑手",
        "remark": "备注",
        "user_paid": "实付",
        "merchant_income": "商家收入",
        "anomalies": "异常",
        "unmapped": "未匹配",
        "reason": "原因",
        "reason_other": "其他原因",
        "send": "提交",
        "close": "取消",
        "read_only": "只读令牌：不能操作订单",
        "action_refused": "操作被拒绝",
        "state.new": "新订单",
        "state.discarded": "已撤单",
        "state.paid": "已支付",
        "state.accepted": "已接单",
        "state.preparing": "制作中",
        "state.ready": "已出餐",
        "state.delivering": "配送中",
        "state.completed": "已完成",
        "state.refunding": "退款中",
        "state.refunded": "已退款",
        "state.partially_refunded": "部分退款",
        "state.cancelled": "已取消",
        "rider.awaiting_pickup": "待取餐",
        "rider.at_store": "已到店",
        "rider.delivering": "配送中",
        "rider.delivered": "已送达",
        "request.cancel": "用户申请取消",
        "request.refund": "用户申请退款",
        "action.confirm": "接单",
        "action.cancel": "取消订单",
        "action.agree_cancel": "同意取消",
        "action.reject_cancel": "拒绝取消",
        "action.agree_refund": "同意退款",
        "action.reject_refund": "拒绝退款",
        "action.meal_ready": "出餐完成",
        "action.accept": "接单",
        "action.start_preparing": "开始制作",
        "action.mark_ready": "制作完成",
        "status.pending": "处理中",
        "status.done": "已完成",
        "status.failed": "失败",
        "anomaly.not_accepted": "超时未接单",
        "anomaly.no_rider": "超时无骑手",
        "anomaly.rider_at_store": "骑手到店久等",
        "anomaly.request_unanswered": "申请即将超时",
        "anomaly.not_completed": "超时未完成",
        "anomaly.unmapped_sku": "商品未匹配",
        "anomaly.total_mismatch": "金额不符",
        "anomaly.income_mismatch": "退款后实收不符",
        "anomaly.price_unreadable": "价格无法读取",
        "anomaly.lines_not_stored": "商品行未保存",
        "anomaly.channel_unauthorized": "渠道授权失效",
        "reasons": "商品已售完|店铺太忙|店铺已打烊|无法配送",
        "authorization.unauthorized": "授权已失效，请重新授权",
        "authorization.expiring": "授权即将过期",
        "authorization.expired": "授权已过期",
        "authorization.alerts": "渠道授权",
        "oauth.title": "门店授权",
        "oauth.authorized": "门店「{store}」已完成{platform}授权，可以关闭此页面。",
        "oauth.unknown_platform": "此地址没有可授权的平台。",
        "oauth.declined": "授权未完成：店主未同意授权，未保存任何信息。",
        "oauth.state_refused": (
            "此授权链接无效、已使用或已过期，未保存任何信息。请联系管理员重新生成授权链接。"
        ),
        "oauth.not_a_code": "{platform}返回的不是授权码，未保存任何信息。",
        "oauth.code_refused": (
            "{platform}拒绝了此授权码，未保存任何信息。请联系管理员重新生成授权链接。"
        ),
        "oauth.not_bound": "此门店在系统配置中未绑定{platform}，未保存任何信息。",
        "oauth.unreachable": (
            "暂时无法连接{platform}，未保存任何信息。请稍后联系管理员重新生成授权链接。"
        ),
        "oauth.unreadable": "无法读取{platform}的答复，未保存任何信息。请联系管理员。",
        "oauth.not_ready": "系统尚未配置保存凭证所需的密钥，未保存任何信息。请联系管理员。",
    },
    EN: {
        "title": "Order board",
        "login_title": "Log in to the order board",
        "token": "API token",
        "login": "Log in",
        "login_error": "That token is not valid. Try again.",
        "no_read": "This token lacks the read scope the board needs.",
        "logout": "Log out",
        "signed_in_as": "Signed in as",
        "live": "Live",
        "offline": "Reconnecting…",
        "needs_action": "Needs action",
        "today": "Today's orders",
        "nothing_to_do": "Nothing needs action",
        "no_orders": "No orders today yet",
        "store": "Store",
        "channel": "Channel",
        "state": "State",
        "all": "All",
        "apply": "Filter",
        "rider": "Rider",
        "remark": "Remark",
        "user_paid": "User paid",
        "merchant_income": "Merchant income",
        "anomalies": "Anomalies",
        "unmapped": "unmapped",
        "reason": "Reason",
        "reason_other": "Other reason",
        "send": "Send",
        "close": "Close",
        "read_only": "Read-only token: orders cannot be acted on",
        "action_refused": "Refused",
        "state.new": "New",
        "state.discarded": "Withdrawn",
        "state.paid": "Paid",
        "state.accepted": "Accepted",
        "state.preparing": "Preparing",
        "state.ready": "Ready",
        "state.delivering": "Delivering",
        "state.completed": "Completed",
        "state.refunding": "Refunding",
        "state.refunded": "Refunded",
        "state.partially_refunded": "Partially refunded",
        "state.cancelled": "Cancelled",
        "rider.awaiting_pickup": "Awaiting pickup",
        "rider.at_store": "At the store",
        "rider.delivering": "Delivering",
        "rider.delivered": "Delivered",
        "request.cancel": "Cancel requested",
        "request.refund": "Refund requested",
        "action.confirm": "Accept",
        "action.cancel": "Cancel order",
        "action.agree_cancel": "Agree to cancel",
        "action.reject_cancel": "Reject cancel",
        "action.agree_refund": "Agree to refund",
        "action.reject_refund": "Reject refund",
        "action.meal_ready": "Meal ready",
        "action.accept": "Accept",
        "action.start_preparing": "Start preparing",
        "action.mark_ready": "Mark ready",
        "status.pending": "pending",
        "status.done": "done",
        "status.failed": "failed",
        "anomaly.not_accepted": "Not accepted in time",
        "anomaly.no_rider": "No rider in time",
        "anomaly.rider_at_store": "Rider waiting at the store",
        "anomaly.request_unanswered": "Request near its deadline",
        "anomaly.not_completed": "Not completed in time",
        "anomaly.unmapped_sku": "Unmapped SKU",
        "anomaly.total_mismatch": "Total disagrees with the lines",
        "anomaly.income_mismatch": "Income after refund unexplained",
        "anomaly.price_unreadable": "Price unreadable",
        "anomaly.lines_not_stored": "Lines not stored",
        "anomaly.channel_unauthorized": "Channel unauthorized",
        "reasons": "Sold out|Too busy|Store closed|Cannot deliver",
        "authorization.unauthorized": "Authorization lost: authorize again",
        "authorization.expiring": "Authorization expiring",
        "authorization.expired": "Authorization expired",
        "authorization.alerts": "Channel authorization",
        "oauth.title": "Store authorization",
        "oauth.authorized": (
            "Store {store} is now authorized on {platform}. You can close this page."
        ),
        "oauth.unknown_platform": "No platform authorizes stores at this address.",
        "oauth.declined": "Not authorized: the store's owner declined. Nothing was stored.",
        "oauth.state_refused": (
            "This authorization link is unknown, used already or expired. "
            "Nothing was stored: ask for a new link."
        ),
        "oauth.not_a_code": (
            "{platform} did not answer with an authorization code. Nothing was stored."
        ),
        "oauth.code_refused": (
            "{platform} refused the authorization code. Nothing was stored: ask for a new link."
        ),
        "oauth.not_bound": (
            "The store is not bound to {platform} in the bridge's config. Nothing was stored."
        ),
        "oauth.unreachable": (
            "{platform} could not be reached. "
            "Nothing was stored: ask for a new link and try again later."
        ),
        "oauth.unreadable": "{platform}'s answer could not be read. Nothing was stored.",
        "oauth.not_ready": (
            "The bridge has no key to keep credentials with yet. Nothing was stored."
        ),
    },
}
"""Every label of the board's pages, by language; both languages have the same keys."""

STATES = (
    "new", "paid", "accepted", "preparing", "ready", "delivering", "completed", "refunding",
    "refunded", "partially_refunded", "cancelled", "discarded",
)  # fmt: skip
"""A card's states, in the order the state filter lists them."""


def language(accept_language: str | None) -> str:
    """The board's language for an ``Accept-Language`` header: Chinese when the first
    language the browser names that the board has is Chinese, else English."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LABELS and weight > 0:
            ranked.append((-weight, index, primary))
    return min(ranked)[2] if ranked else EN


def labels(lang: str) -> Mapping[str, str]:
    """The labels of ``lang`` (English for a language the board lacks)."""
    return LABELS.get(lang, LABELS[EN])

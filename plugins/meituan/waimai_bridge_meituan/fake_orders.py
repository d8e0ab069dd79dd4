"""What the fake Meituan API knows of each order, to answer its reads and a repeated action
the way the plugin assumes Meituan does (:mod:`waimai_bridge_meituan.assumptions`).

An order is learnt from its pushes (:meth:`FakeOrders.learn`, whether the push was
delivered or not) and from the actions on it: its fields (the last order push's), its
``status`` (the §3.4 codes, only ever forward), when it reached each, and its refund
applications. An action the order is already past is answered with the "already" error of
its state and changes nothing. The reads answer in the shapes the plugin assumes:
``order/getOrderDetail`` the order (numbers as JSON numbers, JSON fields as JSON text),
``order/viewstatus`` ``{"status": N}``, ``getOrderRefundDetail`` the applications; an order
the fake never heard of is 806.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from waimai_bridge_meituan import assumptions as facts


@dataclass(frozen=True)
class Effect:
    """What one API path does to an order: the slot it sets, to what, and the states of
    that slot it cannot leave."""

    slot: str
    becomes: str
    past: frozenset[str]


_ANSWERED = frozenset({"agreed", "rejected"})

EFFECTS: Final[Mapping[str, Effect]] = {
    "order/confirm": Effect("order", "confirmed", frozenset({"confirmed", "cancelled"})),
    "order/cancel": Effect("order", "cancelled", frozenset({"cancelled"})),
    "order/refund/agree": Effect("refund", "agreed", _ANSWERED),
    "order/refund/reject": Effect("refund", "rejected", _ANSWERED),
}

ALREADY: Final[Mapping[str, tuple[str, str]]] = {
    "confirmed": facts.ALREADY_CONFIRMED,
    "cancelled": facts.ALREADY_CANCELLED,
    "agreed": facts.REFUND_ALREADY_AGREED,
    "rejected": facts.REFUND_ALREADY_REJECTED,
}
"""A slot's state → the error (code, msg) a call it forbids is answered with."""

STATUS_RANK: Final = (1, 2, 3, 4, 6, 8, 9)
"""The order statuses in the order an order goes through them."""

REACHES: Final[Mapping[str, int]] = {
    "order_paid": 2,
    "order_confirmed": 4,
    "order_completed": 8,
    "order_cancelled": 9,
    "logistics": 4,
    "order/confirm": 4,
    "order/cancel": 9,
    "order/preparationMealComplete": 4,
}
"""The status a push (by kind) or an action (by path) shows an order has reached at least;
anything else, 2."""

STATUS_TIMES: Final[Mapping[int, str]] = {
    2: "order_send_time",
    4: "order_confirm_time",
    8: "order_completed_time",
    9: "order_cancel_time",
}

RES_TYPES: Final[Mapping[str, int]] = {
    "apply": 0, "part": 0, "reject": 1, "agree": 2, "cancelRefund": 7, "cancelRefundComplaint": 8,
}  # fmt: skip
"""A refund push's ``notify_type`` → the application's ``res_type`` (§3.6)."""
AGREED_RES_TYPES: Final = frozenset({2, 4, 5, 6})
REJECTED_RES_TYPES: Final = frozenset({1, 3})

NUMBER_FIELDS: Final = frozenset(
    {"order_id", "wm_order_id_view", "shipping_fee", "total", "original_price", "status",
     "city_id", "has_invoiced", "ctime", "utime", "delivery_time", "is_third_shipping",
     "pay_type", "pick_type", "latitude", "longitude", "day_seq", "dinners_number",
     "avg_send_time", "package_bag_money", "estimate_arrival_time", "incmp_code"}
)  # fmt: skip
"""The order's fields ``order/getOrderDetail`` answers as JSON numbers (go-meituan's model)."""

SYSTEM: Final = frozenset(facts.SYSTEM_PARAMS)


@dataclass
class Refund:
    """One refund application of an order."""

    refund_id: str
    res_type: int
    refund_type: int
    ctime: int
    money: str = ""

    def answer(self, order_id: str) -> dict[str, Any]:
        """The application as ``getOrderRefundDetail`` lists it."""
        return {
            "order_id": number(order_id), "wm_order_id_view": number(order_id),
            "refund_id": number(self.refund_id), "ctime": self.ctime, "utime": self.ctime,
            "refund_type": self.refund_type, "res_type": self.res_type,
            "money": number(self.money) if self.money else 0,
        }  # fmt: skip


@dataclass
class FakeOrder:
    """One order as the fake platform has it."""

    order_id: str
    fields: dict[str, str] = field(default_factory=dict)
    status: int = 2
    times: dict[str, int] = field(default_factory=dict)
    refunds: list[Refund] = field(default_factory=list)

    def reach(self, status: int, at: int) -> None:
        """The order has reached ``status`` at ``at`` (epoch seconds); never backwards."""
        if status in STATUS_TIMES:
            self.times.setdefault(STATUS_TIMES[status], at)
        if STATUS_RANK.index(status) > STATUS_RANK.index(self.status):
            self.status = status

    def slot(self, name: str) -> str | None:
        """The state of the order (``confirmed``/``cancelled``) or of its latest refund
        application (``agreed``/``rejected``), or None."""
        if name == "order":
            return {4: "confirmed", 6: "confirmed", 8: "confirmed", 9: "cancelled"}.get(self.status)
        latest = self.refunds[-1].res_type if self.refunds else None
        if latest in AGREED_RES_TYPES:
            return "agreed"
        return "rejected" if latest in REJECTED_RES_TYPES else None

    def detail(self) -> dict[str, Any]:
        """The order as ``order/getOrderDetail`` answers it."""
        answer: dict[str, Any] = {
            key: number(value) if key in NUMBER_FIELDS else value
            for key, value in self.fields.items()
        }
        answer.update(order_id=number(self.order_id), wm_order_id_view=number(self.order_id))
        answer["status"] = self.status
        answer.update({name: self.times.get(name, 0) for name in STATUS_TIMES.values()})
        return answer


class FakeOrders:
    """Every order the fake knows (not thread-safe: the fake calls it under its lock)."""

    def __init__(self) -> None:
        self._orders: dict[str, FakeOrder] = {}
        self._ids = itertools.count(1)

    def _order(self, order_id: str) -> FakeOrder:
        return self._orders.setdefault(order_id, FakeOrder(order_id))

    def act(self, path: str, order_id: str, *, now: int) -> tuple[str, str] | None:
        """Apply the call of ``path`` to the order; the error (code, msg) Meituan answers
        instead when the order is already past it, None when it succeeds."""
        effect = EFFECTS.get(path)
        order = self._order(order_id)
        current = order.slot(effect.slot) if effect else None
        if effect is not None and current in effect.past:
            return ALREADY[current]
        order.reach(REACHES.get(path, 2), now)
        if effect is not None and effect.slot == "refund":
            res_type = RES_TYPES["agree" if effect.becomes == "agreed" else "reject"]
            latest = order.refunds[-1] if order.refunds else None
            if latest is not None and latest.res_type == 0:
                latest.res_type = res_type
            else:
                order.refunds.append(Refund(self._new_id(), res_type, 1, now))
        return None

    def open_request(self, order_id: str, *, now: int) -> None:
        """A new refund application of the order: it can be answered again."""
        self._order(order_id).refunds.append(Refund(self._new_id(), 0, 1, now))

    def learn(self, code: str, message: Mapping[str, str], *, now: int) -> None:
        """What a push of native ``code`` (its parameters, decoded) tells of its order."""
        order_id = str(message.get("order_id", "")).strip()
        if not order_id:
            return
        order = self._order(order_id)
        kind, _, value = code.partition(".")
        at = _first_time(message, ("utime", "time", "ctime", "timestamp")) or now
        if kind in ("order_paid", "order_confirmed", "order_completed"):
            order.fields.update({key: text for key, text in message.items() if key not in SYSTEM})
        if kind in ("refund", "partial_refund"):
            res_type = RES_TYPES.get(value, 0)
            refund_id = str(message.get("refund_id", "")).strip() or self._new_id()
            found = [refund for refund in order.refunds if refund.refund_id == refund_id]
            if found:
                found[0].res_type = res_type
            else:
                ctime = _first_time(message, ("ctime", "timestamp")) or now
                refund_type = 1 if kind == "refund" else 2
                money = str(message.get("money", "")).strip()
                order.refunds.append(Refund(refund_id, res_type, refund_type, ctime, money))
        order.reach(REACHES.get(kind, 2), at)

    def read(self, path: str, params: Mapping[str, str]) -> tuple[str, str] | dict[str, Any]:
        """The ``data`` of a read of ``path``, or the error (code, msg) it is answered."""
        key = facts.REFUND_ORDER_PARAM if path == facts.REFUND_DETAIL_PATH else "order_id"
        order_id = params.get(key, "").strip()
        if not order_id:
            return ("701", "缺少参数")
        order = self._orders.get(order_id)
        if order is None:
            return (facts.NO_SUCH_ORDER_CODE, "不存在此订单")
        if path == facts.ORDER_STATUS_PATH:
            return {"data": {"status": order.status}}
        if path == facts.REFUND_DETAIL_PATH:
            wanted = params.get("refund_type", "").strip()
            return {"data": [refund.answer(order_id) for refund in order.refunds
                             if not wanted or str(refund.refund_type) == wanted]}  # fmt: skip
        return {"data": order.detail()}

    def clear(self) -> None:
        """Forget every order."""
        self._orders.clear()

    def _new_id(self) -> str:
        return str(69_000_000_000 + next(self._ids))


READ_PATHS: Final = frozenset(
    {facts.ORDER_DETAIL_PATH, facts.ORDER_STATUS_PATH, facts.REFUND_DETAIL_PATH}
)


def number(text: str) -> int | float | str:
    """A field's text as the JSON number Meituan answers, or the text when it is none."""
    value = text.strip()
    digits = value.removeprefix("-")
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:
        return int(value)
    whole, dot, fraction = digits.partition(".")
    if dot and whole.isascii() and whole.isdigit() and fraction.isascii() and fraction.isdigit():
        return float(value)
    return text


def _first_time(message: Mapping[str, str], fields: tuple[str, ...]) -> int | None:
    for name in fields:
        value = str(message.get(name, "")).strip()
        if value.isascii() and value.isdigit() and 0 < int(value) < 10**11:
            return int(value)
    return None

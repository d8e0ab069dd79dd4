"""Meituan's part in ``waimai-bridge demo``: the demo channel (entry-point group
``waimai_bridge.demo``), the protocol of ``waimai_bridge.demo.channel.DemoChannel``.

Orders follow the lifecycles of :data:`LIFECYCLES` (steps are push kinds, with the
``notify_type`` or ``logistics_status`` after a dot), dealt from :data:`DECK` so that every
store sees the whole mix, including Meituan's two refunds on one order. The pushes are built
with :mod:`waimai_bridge_meituan.examples` and signed with
:func:`waimai_bridge_meituan.testing.signed_push` over the bridge's URL, as Meituan signs
them. The secrets are demo values.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Final

from waimai_bridge.plugin_api import Action
from waimai_bridge_meituan import examples
from waimai_bridge_meituan.api import ENDPOINTS
from waimai_bridge_meituan.assumptions import ACK_BODY
from waimai_bridge_meituan.examples import Dish
from waimai_bridge_meituan.testing import FakeAnswer, FakeMeituan, signed_push

PLATFORM: Final = "meituan"
APP_ID: Final = "7001"
APP_SECRET: Final = "demo-meituan-secret-not-for-production"
FORM: Final = {"content-type": "application/x-www-form-urlencoded"}

MENU: Final = (
    (Dish("宫保鸡丁饭", "M101", "M101-R", 3300, box_price_fen=100), "P-101"),
    (Dish("鱼香肉丝饭", "M102", "M102-R", 2900, box_price_fen=100), "P-102"),
    (Dish("红烧牛肉面", "M103", "M103-R", 3100, box_price_fen=100), "P-103"),
    (Dish("番茄炒蛋饭", "M104", "M104-R", 2500, box_price_fen=100), "P-104"),
    (Dish("麻婆豆腐饭", "M105", "M105-R", 2300, box_price_fen=100), "P-105"),
)
SIDES: Final = (
    (Dish("酸辣汤", "M201", "M201-S", 800), "P-201"),
    (Dish("可乐", "M301", "M301-330", 500, spec="330ml"), "P-301"),
    (Dish("冰柠檬茶", "M302", "M302-500", 900, spec="500ml"), "P-302"),
)
"""The Meituan menu: each dish and the chain's product its ``sku_id`` maps to."""

ORDER_STATUS: Final = {"order_paid": 2, "order_confirmed": 4, "order_completed": 8}


@dataclass(frozen=True)
class Lifecycle:
    """An order's steps and where it ends (None: never stored)."""

    placing: tuple[str, ...]
    service: tuple[str, ...]
    expected: str | None
    story: str
    action: Mapping[str, Any] | None = None


PLACED: Final = ("order_paid", "order_confirmed")
RIDER: Final = ("logistics.10", "logistics.15", "logistics.20", "logistics.40")
LIFECYCLES: Final[Mapping[str, Lifecycle]] = {
    "delivered": Lifecycle(PLACED, (*RIDER, "order_completed"), "completed", "delivered"),
    "on_the_way": Lifecycle(PLACED, ("logistics.10", "logistics.20"), "delivering",
                            "rider on the way"),
    "cancelled_in_hold": Lifecycle(
        (*PLACED, "order_cancelled.1103"), (), None, "cancelled by the user within the accept hold"
    ),
    "cancelled_unaccepted": Lifecycle(
        ("order_paid", "order_cancelled.1102"), (), None, "cancelled before acceptance"
    ),
    "partial_cancel": Lifecycle(
        PLACED, ("logistics.10", "partial_refund.part", "partial_refund.agree", "logistics.20",
                 "logistics.40", "order_completed"),
        "partially_refunded", "a drink refunded before delivery",
    ),
    "two_refunds": Lifecycle(
        PLACED, ("logistics.20", "logistics.40", "order_completed", "partial_refund.part",
                 "partial_refund.agree", "refund.apply", "refund.agree"),
        "refunded", "a drink refunded, then the rest",
    ),
    "refund_rejected": Lifecycle(
        PLACED, ("logistics.20", "logistics.40", "order_completed", "refund.apply",
                 "refund.reject"),
        "completed", "refund rejected",
    ),
    "refund_approved": Lifecycle(
        PLACED, ("logistics.10", "logistics.20", "logistics.40", "order_completed",
                 "refund.apply"),
        "refunded", "refund approved through the API after a platform error",
        action={"action": Action.AGREE_REFUND.value, "reason": "同意退款",
                "transient_failures": 1, "then": ["refund.agree"]},
    ),
}  # fmt: skip

DECK: Final = (
    "delivered", "partial_cancel", "cancelled_in_hold", "delivered", "two_refunds",
    "on_the_way", "delivered", "refund_rejected", "delivered", "cancelled_unaccepted",
    "delivered", "delivered",
)  # fmt: skip
"""Twelve orders of a lunch service; each store deals on from where the last one stopped."""


class _Fake:
    """The running :class:`FakeMeituan`, as the demo sees it."""

    def __init__(self, fake: FakeMeituan) -> None:
        self._fake = fake

    @property
    def api_base(self) -> str:
        return self._fake.api_base

    def fail_next(self, action: Action, times: int) -> None:
        self._fake.script(ENDPOINTS[action].path, *[FakeAnswer.http(502)] * times)

    def pushed(self, push: Mapping[str, Any], *, delivered: bool) -> None:
        """Tell the fake of a push it sent or failed to send (its order reads then show
        it): :meth:`FakeMeituan.pushed`."""
        self._fake.pushed(push, delivered=delivered)

    def calls(self, action: Action) -> Sequence[bool]:
        return [
            call.answer.status == 200 and call.answer.body == ACK_BODY
            for call in self._fake.calls_to(ENDPOINTS[action].path)
        ]


@contextmanager
def _running_fake() -> Iterator[_Fake]:
    with FakeMeituan(app_id=APP_ID, secret=APP_SECRET) as fake:
        yield _Fake(fake)


def _poi(number: int) -> str:
    return f"MT-DEMO-{number:03d}"


class MeituanDemo:
    """The Meituan demo channel."""

    platform = PLATFORM

    def settings(self, api_base: str | None) -> Mapping[str, Any]:
        """``[platforms.meituan]`` of the demo."""
        table: dict[str, Any] = {"app_id": APP_ID, "app_secret": APP_SECRET}
        if api_base is not None:
            table["api_base"] = api_base
        return table

    def binding(self, store_id: str, number: int) -> Mapping[str, Any]:
        """The store's ``app_poi_code``."""
        return {"app_poi_code": _poi(number)}

    def skus(self) -> Sequence[tuple[str, str]]:
        """The menu's ``sku_id`` → product rows."""
        return [(dish.sku_id, product) for dish, product in (*MENU, *SIDES)]

    def fake(self) -> AbstractContextManager[_Fake]:
        """A local fake Meituan API."""
        return _running_fake()

    def lunch(
        self,
        store_id: str,
        number: int,
        count: int,
        rng: random.Random,
        *,
        run: int,
        refund_approval: bool,
        unmapped_sku: bool,
    ) -> Sequence[Mapping[str, Any]]:
        """``count`` orders of the store, dealt from :data:`DECK` (every dish is mapped: the
        demo's unmapped SKU is another channel's when ``unmapped_sku`` is not asked)."""
        kinds = [DECK[((number - 1) * count + index) % len(DECK)] for index in range(count)]
        delivered = [index for index, kind in enumerate(kinds) if kind == "delivered"]
        if refund_approval and count:
            kinds[delivered.pop() if delivered else -1] = "refund_approved"
        orders = []
        for index, kind in enumerate(kinds):
            lifecycle = LIFECYCLES[kind]
            dishes = [rng.choice(MENU)[0]]
            if rng.random() < 0.3:
                dishes.append(rng.choice(MENU)[0])
            side = rng.choice(SIDES)[0]
            dishes.append(side)
            orders.append(
                {
                    "platform_order_id": f"2{run}{number}{index:05d}",
                    "store_id": store_id,
                    "story": lifecycle.story,
                    "placing": list(lifecycle.placing),
                    "service": list(lifecycle.service),
                    "action": lifecycle.action,
                    "expected_state": lifecycle.expected,
                    "details": {
                        "poi": _poi(number),
                        "dishes": [
                            [d.name, d.app_food_code, d.sku_id, d.price_fen, d.box_price_fen]
                            for d in dishes
                        ],
                        "discount": rng.choice(((0, 0), (300, 100), (800, 200))),
                        "drink": [side.name, side.app_food_code, side.sku_id, side.price_fen, 0],
                    },
                }
            )
        return orders

    def push(
        self, order: Mapping[str, Any], step: str, at_ms: int, public_base_url: str
    ) -> Mapping[str, Any]:
        """The signed form push of one step (``kind`` or ``kind.value``)."""
        kind, _, value = step.partition(".")
        params = _params(order, kind, value, at_ms // 1000)
        body = signed_push(
            kind, params, secret=APP_SECRET, public_base_url=public_base_url, app_id=APP_ID,
            timestamp=at_ms // 1000,
        )  # fmt: skip
        return {"method": "POST", "path": f"/webhooks/{PLATFORM}/{kind}", "body": body,
                "headers": FORM}  # fmt: skip


def _dish(row: Sequence[Any]) -> Dish:
    name, code, sku, price, box = row
    return Dish(name, code, sku, price, box_price_fen=box)


def _params(order: Mapping[str, Any], kind: str, value: str, at: int) -> dict[str, Any]:
    """The true parameters of the push ``kind`` (``value``: its notify type or status)."""
    details = order["details"]
    order_id = str(order["platform_order_id"])
    dishes = [_dish(row) for row in details["dishes"]]
    merchant, platform = details["discount"]
    sums = examples.money(dishes, merchant_discount_fen=merchant, platform_discount_fen=platform)
    if kind in ORDER_STATUS:
        return examples.priced_order(
            order_id, str(details["poi"]), dishes, status=ORDER_STATUS[kind], ctime=at, sums=sums
        )
    if kind == "logistics":
        return examples.logistics(int(value), at, order_id=order_id)
    if kind == "order_cancelled":
        return examples.cancel(value, order_id=order_id)
    if kind == "partial_refund":
        drink = _dish(details["drink"])
        return examples.partial(
            value, f"R{order_id}1", order_id=order_id, ctime=str(at), res_type=_res_type(value),
            food=[drink.refunded()], money=examples.yuan(drink.price_fen),
        )  # fmt: skip
    refunded_before = (
        _dish(details["drink"]).price_fen if "partial_refund.agree" in order["service"] else 0
    )
    return examples.refund(
        value, f"R{order_id}2", order_id=order_id, ctime=str(at), res_type=_res_type(value),
        money=examples.yuan(sums.user_paid - refunded_before),
    )  # fmt: skip


def _res_type(notify_type: str) -> str:
    """``res_type`` of a refund push: 0 waiting, 1 rejected, 2 agreed (platforms.md §3.6)."""
    return {"agree": "2", "reject": "1"}.get(notify_type, "0")


channel = MeituanDemo()
"""The entry point of the ``waimai_bridge.demo`` group."""

"""Eleme's part in ``waimai-bridge demo``: the demo channel (entry-point group
``waimai_bridge.demo``), the protocol of ``waimai_bridge.demo.channel.DemoChannel``.

Orders follow the lifecycles of :data:`LIFECYCLES` (steps are push types, ``p`` marking a
partial cancel or refund), dealt from :data:`DECK` so that every store sees the whole mix;
the pushes are built with :mod:`waimai_bridge_eleme.examples` and signed with
:func:`waimai_bridge_eleme.testing.push_body` exactly as Eleme signs them. The secrets are
demo values.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Final

from waimai_bridge.plugin_api import Action
from waimai_bridge_eleme import examples
from waimai_bridge_eleme.api import CALLS
from waimai_bridge_eleme.testing import FakeAnswer, FakeEleme, push_body

PLATFORM: Final = "eleme"
APP_KEY: Final = "demo-eleme-app"
APP_SECRET: Final = "demo-eleme-secret-not-for-production"
APP_ID: Final = 50_010_001
SHOP_BASE: Final = 170_000_000


@dataclass(frozen=True)
class Dish:
    """A dish of the menu: Eleme's line and the chain's product it maps to (None: a new
    dish nobody has mapped yet)."""

    line: examples.Line
    product_id: str | None


MENU: Final = (
    Dish(examples.Line("宫保鸡丁饭", "E-101", 200000300000101, 3200), "P-101"),
    Dish(examples.Line("鱼香肉丝饭", "E-102", 200000300000102, 2800), "P-102"),
    Dish(examples.Line("红烧牛肉面", "E-103", 200000300000103, 3000), "P-103"),
    Dish(examples.Line("番茄炒蛋饭", "E-104", 200000300000104, 2400), "P-104"),
    Dish(examples.Line("麻婆豆腐饭", "E-105", 200000300000105, 2200), "P-105"),
)
SIDES: Final = (
    Dish(examples.Line("酸辣汤", "E-201", 200000300000201, 800), "P-201"),
    Dish(examples.Line("可乐-330ml", "E-301", 200000300000301, 500), "P-301"),
    Dish(examples.Line("冰柠檬茶", "E-302", 200000300000302, 900), "P-302"),
)
NEW_DISH: Final = Dish(examples.Line("藤椒鸡排饭(新品)", "E-109", 200000300000109, 3500), None)
"""On the menu at Eleme, not yet in the chain's SKU mapping: its order raises an anomaly."""

STATUS: Final = {12: "valid", 14: "invalid", 15: "invalid", 17: "invalid", 18: "settled"}
REFUND_STATUS: Final = {
    20: "applied", 21: "noRefund", 22: "rejected", 23: "successful",
    30: "applied", 31: "noRefund", 32: "rejected", 33: "successful",
}  # fmt: skip
DELIVERY: Final = {53: "tobeFetched", 54: "arrived", 55: "delivering", 56: "completed"}


@dataclass(frozen=True)
class Lifecycle:
    """An order's steps and where it ends (None: never stored)."""

    placing: tuple[str, ...]
    service: tuple[str, ...]
    expected: str | None
    story: str
    action: Mapping[str, Any] | None = None


RIDER: Final = ("53", "54", "55", "56")
LIFECYCLES: Final[Mapping[str, Lifecycle]] = {
    "delivered": Lifecycle(("10", "12"), (*RIDER, "18"), "completed", "delivered"),
    "on_the_way": Lifecycle(("10", "12"), ("53", "54", "55"), "delivering", "rider on the way"),
    "cancelled_in_hold": Lifecycle(
        ("10", "12", "14"), (), None, "cancelled by the user within the accept hold"
    ),
    "cancelled_unaccepted": Lifecycle(("10", "14"), (), None, "cancelled before acceptance"),
    "cancel_agreed": Lifecycle(("10", "12"), ("20", "23"), "refunded", "cancel agreed"),
    "cancel_rejected": Lifecycle(
        ("10", "12"), ("20", "22", "53", "55", "56", "18"), "completed", "cancel rejected"
    ),
    "partial_refund": Lifecycle(
        ("10", "12"), ("53", "55", "56", "18", "30p", "33p"), "partially_refunded",
        "a drink refunded after delivery",
    ),
    "full_refund": Lifecycle(
        ("10", "12"), ("55", "56", "18", "30", "33"), "refunded", "refunded after delivery"
    ),
    "refund_approved": Lifecycle(
        ("10", "12"), ("53", "55", "56", "18", "30"), "refunded",
        "refund approved through the API after a platform error",
        action={"action": Action.AGREE_REFUND.value, "reason": "同意退款",
                "transient_failures": 1, "then": ["33"]},
    ),
}  # fmt: skip

DECK: Final = (
    "delivered", "cancelled_in_hold", "partial_refund", "delivered", "full_refund",
    "on_the_way", "delivered", "cancel_agreed", "cancelled_unaccepted", "delivered",
    "cancel_rejected", "delivered",
)  # fmt: skip
"""Twelve orders of a lunch service; each store deals on from where the last one stopped."""


def _shop(number: int) -> int:
    return SHOP_BASE + number


class _Fake:
    """The running :class:`FakeEleme`, as the demo sees it."""

    def __init__(self, fake: FakeEleme) -> None:
        self._fake = fake

    @property
    def api_base(self) -> str:
        return self._fake.api_base

    @property
    def eleme(self) -> FakeEleme:
        """The running :class:`FakeEleme` itself, for a test that scripts its answers."""
        return self._fake

    def fail_next(self, action: Action, times: int) -> None:
        self._fake.script(CALLS[action].method, *[FakeAnswer.http(502)] * times)

    def pushed(self, push: Mapping[str, Any], *, delivered: bool) -> None:
        """Tell the fake of a push it sent or failed to send (its pull methods offer the
        undelivered ones): :meth:`FakeEleme.pushed`."""
        self._fake.pushed(push, delivered=delivered)

    def calls(self, action: Action) -> Sequence[bool]:
        method = CALLS[action].method
        return [
            call.http_status == 200 and call.answer is not None and call.answer["error"] is None
            for call in self._fake.calls
            if call.action == method
        ]


@contextmanager
def _running_fake() -> Iterator[_Fake]:
    with FakeEleme(app_key=APP_KEY, app_secret=APP_SECRET, app_id=APP_ID) as fake:
        yield _Fake(fake)


class ElemeDemo:
    """The Eleme demo channel."""

    platform = PLATFORM

    def settings(self, api_base: str | None) -> Mapping[str, Any]:
        """``[platforms.eleme]`` of the demo."""
        table: dict[str, Any] = {"app_key": APP_KEY, "app_secret": APP_SECRET, "app_id": APP_ID}
        if api_base is not None:
            table["api_base"] = api_base
        return table

    def binding(self, store_id: str, number: int) -> Mapping[str, Any]:
        """The store's Eleme shop and its (demo) access token."""
        return {"shop_id": _shop(number), "token": f"demo-eleme-token-{number}"}

    def skus(self) -> Sequence[tuple[str, str]]:
        """The menu's ``extendCode`` → product rows; the new dish is left out."""
        return [
            (dish.line.extend_code, dish.product_id)
            for dish in (*MENU, *SIDES)
            if dish.product_id is not None
        ]

    def fake(self) -> AbstractContextManager[_Fake]:
        """A local fake Eleme API that accepts any shop token."""
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
        """``count`` orders of the store, dealt from :data:`DECK`."""
        kinds = [DECK[((number - 1) * count + index) % len(DECK)] for index in range(count)]
        delivered = [index for index, kind in enumerate(kinds) if kind == "delivered"]
        if refund_approval and count:
            kinds[delivered.pop() if delivered else -1] = "refund_approved"
        new_dish_at = delivered[0] if unmapped_sku and delivered else None
        orders = []
        for index, kind in enumerate(kinds):
            lifecycle = LIFECYCLES[kind]
            lines = [rng.choice(MENU).line]
            if rng.random() < 0.3:
                lines.append(rng.choice(MENU).line)
            if index == new_dish_at:
                lines = [NEW_DISH.line]
            side = rng.choice(SIDES).line
            lines.append(side)
            orders.append(
                {
                    "platform_order_id": f"3{run}{number}{index:04d}",
                    "store_id": store_id,
                    "story": lifecycle.story
                    + (" (a new dish not in the SKU mapping)" if index == new_dish_at else ""),
                    "placing": list(lifecycle.placing),
                    "service": list(lifecycle.service),
                    "action": lifecycle.action,
                    "expected_state": lifecycle.expected,
                    "details": {
                        "shop_id": _shop(number),
                        "lines": [
                            [line.name, line.extend_code, line.sku_id, line.price_fen]
                            for line in lines
                        ],
                        "shop_part": rng.choice((0, 300, 500, 800)),
                        "drink": [side.name, 1, side.price_fen],
                    },
                }
            )
        return orders

    def push(
        self, order: Mapping[str, Any], step: str, at_ms: int, public_base_url: str
    ) -> Mapping[str, Any]:
        """The signed push of one step (a push type, ``p`` marking a partial one)."""
        details = order["details"]
        order_id, shop = str(order["platform_order_id"]), int(details["shop_id"])
        push_type, partial = int(step.rstrip("p")), step.endswith("p")
        seconds = at_ms // 1000
        message: dict[str, Any]
        if push_type == 10:
            message = examples.new_order(
                order_id, shop, lines=_lines(details), shop_part_fen=details["shop_part"],
                active_at=dt.datetime.fromtimestamp(seconds).isoformat(),
            )  # fmt: skip
        elif push_type in STATUS:
            message = examples.status(order_id, shop, STATUS[push_type], seconds)
        elif push_type in DELIVERY:
            message = examples.delivery(order_id, shop, DELIVERY[push_type], at_ms)
        else:
            drink = tuple(details["drink"])
            message = examples.refund(
                order_id, shop, REFUND_STATUS[push_type], seconds,
                partial_lines=[drink] if partial else (),
                total_fen=None if partial else _user_paid(details),
            )  # fmt: skip
        body = push_body(
            push_type, message, app_id=APP_ID, shop_id=shop, secret=APP_SECRET, timestamp_ms=at_ms
        )
        return {
            "method": "POST",
            "path": f"/webhooks/{PLATFORM}",
            "body": body,
            "headers": {"content-type": "application/json; charset=utf-8"},
        }


def _lines(details: Mapping[str, Any]) -> list[examples.Line]:
    return [examples.Line(name, code, sku, price) for name, code, sku, price in details["lines"]]


def _user_paid(details: Mapping[str, Any]) -> int:
    """What the user paid for the order :func:`examples.new_order` builds (default fees)."""
    goods = sum(line.price_fen * line.quantity for line in _lines(details))
    return goods + 200 + 500 - int(details["shop_part"]) - 200


channel = ElemeDemo()
"""The entry point of the ``waimai_bridge.demo`` group."""

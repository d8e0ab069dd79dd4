"""The own POS's part in ``waimai-bridge demo``: the demo channel (entry-point group
``waimai_bridge.demo``), the protocol of ``waimai_bridge.demo.channel.DemoChannel``.

The chain's own app and tills send orders and the kitchen's steps; there is no platform
API to act on, so the channel has no fake and ignores the demo's refund approval. Pushes
are built with :mod:`waimai_bridge_own_pos.examples` and signed with
:func:`waimai_bridge_own_pos.testing.signed_push` at the moment they are sent (the replay
window is checked against the bridge's clock). The secret is a demo value.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from waimai_bridge_own_pos import examples
from waimai_bridge_own_pos.testing import signed_push

PLATFORM: Final = "own_pos"
SECRET: Final = "demo-own-pos-secret-not-for-production"

MENU: Final = (
    (examples.Line("P-101", "宫保鸡丁饭", 3200), "P-101"),
    (examples.Line("P-102", "鱼香肉丝饭", 2800), "P-102"),
    (examples.Line("P-103", "红烧牛肉面", 3000), "P-103"),
    (examples.Line("P-105", "麻婆豆腐饭", 2200), "P-105"),
)
SIDES: Final = (
    (examples.Line("P-201", "酸辣汤", 800), "P-201"),
    (examples.Line("P-302", "冰柠檬茶", 900), "P-302"),
)
"""The own channel sends the chain's own codes; the mapping is the identity."""

KITCHEN: Final = ("kitchen.accept", "kitchen.start_preparing", "kitchen.mark_ready")
RIDER: Final = ("rider.awaiting_pickup", "rider.at_store", "rider.delivering", "rider.delivered")
PLACING: Final = ("order.created", "order.accepted")


@dataclass(frozen=True)
class Lifecycle:
    """An order's steps and where it ends (None: never stored)."""

    placing: tuple[str, ...]
    service: tuple[str, ...]
    expected: str | None
    story: str


LIFECYCLES: Final[Mapping[str, Lifecycle]] = {
    "delivered": Lifecycle(PLACING, (*KITCHEN, *RIDER, "order.completed"), "completed",
                           "cooked, delivered by the chain's riders"),
    "preparing": Lifecycle(PLACING, KITCHEN[:2], "preparing", "in the kitchen"),
    "ready": Lifecycle(PLACING, KITCHEN, "ready", "waiting at the counter"),
    "cancelled_in_hold": Lifecycle(
        (*PLACING, "order.cancelled:accepted"), (), None, "cancelled within the accept hold"
    ),
    "cancelled_unaccepted": Lifecycle(
        ("order.created", "order.cancelled:unaccepted"), (), None, "cancelled before acceptance"
    ),
    "partial_refund": Lifecycle(
        PLACING, (*KITCHEN, *RIDER, "order.completed", "refund.requested:p", "refund.agreed:p"),
        "partially_refunded", "a drink refunded after delivery",
    ),
    "cancel_agreed": Lifecycle(
        PLACING, ("kitchen.accept", "refund.requested", "refund.agreed"), "refunded",
        "cancelled by the store after acceptance",
    ),
}  # fmt: skip

DECK: Final = (
    "delivered", "preparing", "cancelled_in_hold", "delivered", "partial_refund", "ready",
    "delivered", "cancel_agreed", "cancelled_unaccepted", "delivered", "delivered", "preparing",
)  # fmt: skip
"""Twelve orders of a lunch service; each store deals on from where the last one stopped."""


def _store_code(number: int) -> str:
    return f"POS-{number:02d}"


class OwnPosDemo:
    """The own POS demo channel."""

    platform = PLATFORM

    def settings(self, api_base: str | None) -> Mapping[str, Any]:
        """``[platforms.own_pos]`` of the demo (there is no API to point anywhere)."""
        return {"secret": SECRET}

    def binding(self, store_id: str, number: int) -> Mapping[str, Any]:
        """The store code the tills send."""
        return {"pos_store_code": _store_code(number)}

    def skus(self) -> Sequence[tuple[str, str]]:
        """The chain's own codes, each its own product."""
        return [(line.sku_code, product) for line, product in (*MENU, *SIDES)]

    def fake(self) -> None:
        """No platform API: the POS is the chain's own system."""
        return None

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
        """``count`` orders of the store, dealt from :data:`DECK` (no actions: the own
        channel has nothing to ask of a platform)."""
        orders = []
        for index in range(count):
            lifecycle = LIFECYCLES[DECK[((number - 1) * count + index) % len(DECK)]]
            lines = [rng.choice(MENU)[0], rng.choice(SIDES)[0]]
            order_id = f"POS{run}{number}{index:04d}"
            created = examples.new_order(order_id, _store_code(number), 0, lines=lines)
            orders.append(
                {
                    "platform_order_id": order_id,
                    "store_id": store_id,
                    "story": lifecycle.story,
                    "placing": list(lifecycle.placing),
                    "service": list(lifecycle.service),
                    "action": None,
                    "expected_state": lifecycle.expected,
                    "details": {
                        "store_code": _store_code(number),
                        "lines": [[ln.sku_code, ln.name, ln.unit_price_fen] for ln in lines],
                        "user_paid": created["order"]["user_paid_fen"],
                    },
                }
            )
        return orders

    def push(
        self, order: Mapping[str, Any], step: str, at_ms: int, public_base_url: str
    ) -> Mapping[str, Any]:
        """The signed push of one step: an event name; ``:p`` marks a partial refund after
        completion (a refund without it is a full cancel before completion), and
        ``:accepted``/``:unaccepted`` which side of acceptance a cancel is on."""
        details = order["details"]
        order_id, store = str(order["platform_order_id"]), str(details["store_code"])
        event, _, flag = step.partition(":")
        message = _message(event, flag, order_id, store, at_ms, details)
        body, headers = signed_push(message, secret=SECRET)
        return {"method": "POST", "path": f"/webhooks/{PLATFORM}", "body": body, "headers": headers}


def _message(
    event: str, flag: str, order_id: str, store: str, at_ms: int, details: Mapping[str, Any]
) -> dict[str, Any]:
    if event == "order.created":
        lines = [examples.Line(code, name, price) for code, name, price in details["lines"]]
        return examples.new_order(order_id, store, at_ms, lines=lines)
    if event == "order.cancelled":
        return examples.cancelled(order_id, store, at_ms, order_accepted=flag == "accepted")
    if event.startswith("refund."):
        # the demo's partial refunds come after completion, its full ones before (cancels)
        partial = flag == "p"
        code, name, price = details["lines"][-1]
        return examples.refund(
            event, order_id, store, at_ms, order_completed=partial, partial=partial,
            amount_fen=price if partial else int(details["user_paid"]),
            lines=[(code, name, 1, price)] if partial else (),
        )  # fmt: skip
    return examples.message(event, order_id, store, at_ms)


channel = OwnPosDemo()
"""The entry point of the ``waimai_bridge.demo`` group."""

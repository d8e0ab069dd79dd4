"""The kinds of ``message`` an Eleme push carries, by push ``type`` (platforms.md §1.5–1.9).

Each kind names the fields a message of that kind must have and where its time of change
is. The table is data; :func:`kind_of` and :func:`change_time_ms` read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from waimai_bridge.plugin_api import MAX_ID_LENGTH, MAX_INT64


class Kind(StrEnum):
    """A ``message`` structure."""

    ORDER = "order"  # the full OOrder (§1.6)
    STATUS = "status"  # {orderId, state, shopId, updateTime s, role} (§1.7)
    REFUND = "refund"  # {orderId, refundStatus, reason, goodsList, refundType, totalPrice} (§1.8)
    DELIVERY = "delivery"  # {orderId, state, subState, name, phone, updateAt ms, …} (§1.9)
    REMINDER = "reminder"  # 催单; schema not confirmed [G], an orderId is expected
    SHOP = "shop"  # shop and authorisation messages: no order
    UNCONFIRMED = "unconfirmed"  # 217, 218: meaning not confirmed [G]


@dataclass(frozen=True)
class KindRule:
    """What a message of one kind must hold."""

    required: tuple[str, ...]
    order_id_keys: tuple[str, ...]


RULES: Mapping[Kind, KindRule] = {
    Kind.ORDER: KindRule(("totalPrice", "originalPrice", "groups"), ("orderId", "id")),
    Kind.STATUS: KindRule(("orderId",), ("orderId",)),
    Kind.REFUND: KindRule(("orderId",), ("orderId",)),
    Kind.DELIVERY: KindRule(("orderId",), ("orderId",)),
    Kind.REMINDER: KindRule(("orderId",), ("orderId",)),
    Kind.SHOP: KindRule((), ()),
    Kind.UNCONFIRMED: KindRule(("orderId",), ("orderId",)),
}

KINDS: Mapping[int, Kind] = {
    10: Kind.ORDER,
    **{t: Kind.STATUS for t in (12, 14, 15, 17, 18)},
    **{t: Kind.REFUND for t in (*range(20, 27), *range(30, 37))},
    45: Kind.REMINDER,
    **{t: Kind.DELIVERY for t in range(51, 77)},
    **{t: Kind.SHOP for t in (91, 93, 100, 105)},
    **{t: Kind.UNCONFIRMED for t in (217, 218)},
}

TIME_FIELDS: tuple[tuple[str, int], ...] = (("updateAt", 1), ("updateTime", 1000))
"""Where a message states its time of change, and the factor to milliseconds: delivery
messages send ``updateAt`` in ms, status and refund messages ``updateTime`` in seconds
(§1.7–1.9). Others fall back to the envelope's ``timestamp`` (SPEC §4.1)."""


def kind_of(push_type: int) -> Kind | None:
    """The message kind of a push ``type``; None for a type Eleme does not send."""
    return KINDS.get(push_type)


def missing_fields(kind: Kind, message: Mapping[str, Any]) -> list[str]:
    """The fields a message of ``kind`` must have and lacks."""
    return [key for key in RULES[kind].required if message.get(key) in (None, "")]


def order_id(kind: Kind, message: Mapping[str, Any]) -> str | None:
    """The order id a message names, as a string (ids exceed 2^53); None for shop messages.

    ``ValueError`` for an id that is not a string or an integer, or is too long to store.
    """
    for key in RULES[kind].order_id_keys:
        value = message.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"{key} is not a string or an integer")
        text = str(value)
        if len(text) > MAX_ID_LENGTH:
            raise ValueError(f"{key} is longer than {MAX_ID_LENGTH} characters")
        return text
    return None


def change_time_ms(message: Mapping[str, Any], envelope_ms: int) -> int:
    """The platform's time of the change: the message's own, else the envelope's.

    ``ValueError`` for a time too large to store.
    """
    for key, factor in TIME_FIELDS:
        value = message.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            if value > MAX_INT64 // factor:
                raise ValueError(f"{key} is too large for a time")
            return value * factor
    return envelope_ms

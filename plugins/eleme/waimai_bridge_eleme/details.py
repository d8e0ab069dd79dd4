"""An Eleme OOrder's day sequence number and the customer's remark (platforms.md §1.6).

``daySn`` (当日流水号) and ``description`` (备注) are OOrder fields (confirmed: the SDK's
OOrder [S-E1d], the doc [S-E5c] and real payloads [S-E7], where ``daySn`` is a JSON
number). They are only shown, never a reason to refuse an order: a value that is not what
the contract holds (a day number that is not a whole number from 0 to 1 000 000, a remark
that is not text) is read as not stated, and a remark longer than the contract's bound is
shortened to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waimai_bridge.plugin_api import OrderDetails, shown_details


def details(order: Mapping[str, Any]) -> OrderDetails:
    """The ``daySn`` and ``description`` of an OOrder message, each None when not stated."""
    return shown_details(order.get("daySn"), order.get("description"))

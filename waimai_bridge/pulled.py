"""The models of the optional recovery hooks (SPEC §2.1): a pull of the messages a
platform failed to push, its receipt, and an order read again from the platform."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from waimai_bridge.bounds import MAX_TEXT_LENGTH, EpochMs, Id
from waimai_bridge.models import ContractModel, NativeEvent

MAX_PULLED = 500
"""Events one pull or fetch returns at most; a pull with more says ``more``."""


class PullRequest(ContractModel):
    """One pull of a store's messages the platform failed to push (``pull_events``)."""

    store_id: Id
    since_ms: EpochMs = Field(
        description="The start of the last pull that succeeded, less an overlap; 0 the first time."
    )


class PulledEvents(ContractModel):
    """What a pull found: native events with the idempotency keys their pushes would have."""

    events: list[NativeEvent] = Field(max_length=MAX_PULLED)
    receipt: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LENGTH)] | None = Field(
        default=None,
        description="Given back to ``confirm_pull`` once the events are stored, so that the "
        "platform stops offering them (e.g. the message ids to confirm); None: nothing to confirm.",
    )
    more: bool = Field(
        default=False, description="The platform holds more than this pull took: pull again."
    )


class PullReceipt(ContractModel):
    """A pull's receipt, handed back once its events are stored (``confirm_pull``)."""

    store_id: Id
    receipt: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LENGTH)]


class Confirmed(ContractModel):
    """What ``confirm_pull`` did: how many messages the platform took as confirmed."""

    count: int = Field(ge=0, le=MAX_PULLED)


class OrderRef(ContractModel):
    """One platform order of a store, to read from the platform (``fetch_order``)."""

    store_id: Id
    platform_order_id: Id


class FetchedOrder(ContractModel):
    """An order as the platform has it now, as native events: the full order (for its items
    and prices) and its current state, with the idempotency keys a push of the same message
    would have wherever the platform's messages allow it."""

    events: list[NativeEvent] = Field(min_length=1, max_length=MAX_PULLED)

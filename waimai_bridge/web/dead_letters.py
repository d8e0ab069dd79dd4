"""Dead letters over HTTP: list the parked inbox events, failed actions and dead deliveries;
retry one (or discard a parked event), naming why."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from waimai_bridge.pipeline.dead_letters import REASON_LENGTH, DeadLetters, checked_reason
from waimai_bridge.store.tables import Delivery, InboxEvent
from waimai_bridge.web.actions import ActionView, action_view
from waimai_bridge.web.api import API, RowId, bridge_of
from waimai_bridge.web.tokens import TOKEN_NAME
from waimai_bridge.web.views import iso

MAX_LISTED = 1000

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"], dependencies=API)

Limit = Annotated[int, Query(ge=1, le=MAX_LISTED)]


class Reason(BaseModel):
    """Why a person retries or discards a dead letter; logged with the token's name."""

    reason: str = Field(min_length=1, max_length=REASON_LENGTH)

    @field_validator("reason")
    @classmethod
    def _recordable(cls, value: str) -> str:
        return checked_reason(value)


class InboxLetter(BaseModel):
    """A parked inbox event (its payload is not shown)."""

    id: int
    platform: str
    store_id: str
    platform_order_id: str
    code: str = Field(description="The platform's native event code.")
    status: str
    attempts: int
    error: str | None
    received_at: str
    parked_at: str | None = Field(description="When it was parked (or last settled).")


class DeliveryLetter(BaseModel):
    """An update a subscriber did not take within the give-up time (its body is not shown)."""

    id: int
    subscription_id: int
    platform: str | None
    order_id: int | None
    kind: str
    status: str
    attempts: int
    last_error: str | None
    created_at: str = Field(description="When its give-up time started counting.")
    next_attempt_at: str


class InboxLetters(BaseModel):
    """The parked inbox events listed."""

    items: list[InboxLetter]


class ActionLetters(BaseModel):
    """The failed actions listed."""

    items: list[ActionView]


class DeliveryLetters(BaseModel):
    """The dead deliveries listed."""

    items: list[DeliveryLetter]


def inbox_letter(row: InboxEvent) -> InboxLetter:
    """The API's view of an inbox event."""
    return InboxLetter(
        id=row.id, platform=row.platform, store_id=row.store_id,
        platform_order_id=row.platform_order_id, code=row.native_code, status=row.status,
        attempts=row.attempts, error=row.error, received_at=iso(row.received_at_ms),
        parked_at=None if row.done_at_ms is None else iso(row.done_at_ms),
    )  # fmt: skip


def delivery_letter(row: Delivery) -> DeliveryLetter:
    """The API's view of a delivery."""
    platform = json.loads(row.body).get("platform")
    return DeliveryLetter(
        id=row.id, subscription_id=row.subscription_id,
        platform=platform if isinstance(platform, str) else None, order_id=row.order_id,
        kind=row.kind, status=row.status, attempts=row.attempts, last_error=row.last_error,
        created_at=iso(row.created_at_ms), next_attempt_at=iso(row.next_attempt_at_ms),
    )  # fmt: skip


def _letters(request: Request) -> DeadLetters:
    bridge = bridge_of(request)
    return DeadLetters(bridge.pipeline, bridge.applier, bridge.actions, send=True)


def _who(request: Request) -> str:
    """The name of the token the request came with."""
    return str(getattr(request.state, TOKEN_NAME, "an unnamed token"))


@router.get("/inbox", response_model=InboxLetters, summary="Parked inbox events")
async def parked_events(request: Request, limit: Limit = 100) -> InboxLetters:
    """Inbox events their plugin could not read, oldest first."""
    rows = await run_in_threadpool(_letters(request).parked_events, limit=limit)
    return InboxLetters(items=[inbox_letter(row) for row in rows])


@router.get("/actions", response_model=ActionLetters, summary="Failed actions")
async def failed_actions(request: Request, limit: Limit = 100) -> ActionLetters:
    """Outbound actions that failed, newest first, with the platform's last answer."""
    rows = await run_in_threadpool(_letters(request).failed_actions, limit=limit)
    return ActionLetters(items=[action_view(row) for row in rows])


@router.get("/deliveries", response_model=DeliveryLetters, summary="Dead deliveries")
async def dead_deliveries(request: Request, limit: Limit = 100) -> DeliveryLetters:
    """Subscriber updates given up on, newest first."""
    rows = await run_in_threadpool(_letters(request).dead_deliveries, limit=limit)
    return DeliveryLetters(items=[delivery_letter(row) for row in rows])


@router.post("/inbox/{row_id}/retry", response_model=InboxLetter, summary="Retry an event")
async def retry_event(request: Request, row_id: RowId, body: Reason) -> InboxLetter:
    """Put a parked inbox event back in line (after fixing its plugin or config)."""
    letters, who = _letters(request), _who(request)
    row = await run_in_threadpool(letters.retry_event, row_id, who=who, reason=body.reason)
    if row is None:
        raise HTTPException(404, f"no parked inbox event {row_id}")
    return inbox_letter(row)


@router.post("/inbox/{row_id}/discard", response_model=InboxLetter, summary="Discard an event")
async def discard_event(request: Request, row_id: RowId, body: Reason) -> InboxLetter:
    """Give up on a parked inbox event for good; who and why become its error."""
    letters, who = _letters(request), _who(request)
    row = await run_in_threadpool(letters.discard_event, row_id, who=who, reason=body.reason)
    if row is None:
        raise HTTPException(404, f"no parked inbox event {row_id}")
    return inbox_letter(row)


@router.post("/actions/{action_id}/retry", response_model=ActionView, summary="Retry an action")
async def retry_action(request: Request, action_id: RowId, body: Reason) -> ActionView:
    """Give a failed action another round of tries (after checking on the platform)."""
    letters, who = _letters(request), _who(request)
    row = await run_in_threadpool(letters.retry_action, action_id, who=who, reason=body.reason)
    if row is None:
        raise HTTPException(404, f"no failed action {action_id}")
    return action_view(row)


@router.post(
    "/deliveries/{delivery_id}/retry", response_model=DeliveryLetter, summary="Retry a delivery"
)
async def retry_delivery(request: Request, delivery_id: RowId, body: Reason) -> DeliveryLetter:
    """Make a dead delivery due now, with a fresh give-up time (after fixing the subscriber)."""
    letters, who = _letters(request), _who(request)
    row = await run_in_threadpool(letters.retry_delivery, delivery_id, who=who, reason=body.reason)
    if row is None:
        raise HTTPException(404, f"no dead delivery {delivery_id}")
    return delivery_letter(row)

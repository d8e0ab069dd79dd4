"""Outbound actions over HTTP (SPEC §7.3): ask one, read one, list them, retry one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from waimai_bridge.models import Action
from waimai_bridge.pipeline.actions import ActionRefused
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import actions
from waimai_bridge.store.tables import Order, OutboundAction
from waimai_bridge.web.api import API, RowId, StorableText, bridge_of
from waimai_bridge.web.views import iso

SAME_ACTION = (
    "The existing action: the same idempotency key, or the same kind on the same order (and "
    "cancel/refund request) while pending or done"
)

router = APIRouter(prefix="/api/v1", tags=["actions"], dependencies=API)


class ActionAsk(BaseModel):
    """An action to ask of the order's platform."""

    action: Action
    reason: StorableText | None = Field(default=None, max_length=500)
    idempotency_key: StorableText = Field(
        min_length=1, max_length=200, description="The same key again gives the same action."
    )


class ResultView(BaseModel):
    """The platform's answer, code as the platform sends it."""

    code: str | None
    message: str | None


class ActionView(BaseModel):
    """An outbound action and where it stands."""

    id: int
    action: Action
    order_id: int | None
    platform: str
    platform_order_id: str
    store_id: str
    reason: str | None
    status: actions.ActionStatus
    attempts: int = Field(description="Platform calls made.")
    result: ResultView | None
    verified: bool = Field(
        description="The last answer was read off the order on the platform: the call's own "
        "outcome was unknown (verify_action)."
    )
    created_at: str
    updated_at: str


def action_view(row: OutboundAction) -> ActionView:
    """The API's view of an action."""
    result = None
    if row.result_code is not None or row.result_message is not None:
        result = ResultView(code=row.result_code, message=row.result_message)
    return ActionView(
        id=row.id, action=Action(row.action), order_id=row.order_id, platform=row.platform,
        platform_order_id=row.platform_order_id, store_id=row.store_id, reason=row.reason,
        status=actions.ActionStatus(row.status), attempts=row.attempts, result=result,
        verified=row.verified, created_at=iso(row.created_at_ms), updated_at=iso(row.updated_at_ms),
    )  # fmt: skip


async def _ask(bridge: Bridge, platform: str, platform_order_id: str, body: ActionAsk) -> Response:
    def ask() -> actions.Asked:
        return bridge.actions.ask(
            platform=platform, platform_order_id=platform_order_id, action=body.action,
            reason=body.reason, key=body.idempotency_key,
        )  # fmt: skip

    try:
        asked = await run_in_threadpool(ask)
    except ActionRefused as exc:
        content: dict[str, object] = {"error": exc.message}
        if exc.allowed is not None:
            content["allowed"] = [action.value for action in exc.allowed]
        return JSONResponse(content, status_code=exc.status)
    view = action_view(asked.action).model_dump(mode="json")
    return JSONResponse(view, status_code=202 if asked.created else 200)


@router.post(
    "/orders/{order_id}/actions",
    status_code=202,
    response_model=ActionView,
    summary="Ask the platform to act on an order",
    responses={200: {"description": SAME_ACTION}},
)
async def ask_order_action(request: Request, order_id: RowId, body: ActionAsk) -> Response:
    """202 with a new action; 200 with the existing one for a key already used, or of the
    same kind on the same order (and request) while it is pending or done."""
    bridge = bridge_of(request)

    def find() -> tuple[str, str] | None:
        with bridge.database.reading() as session:
            order = session.get(Order, order_id)
            return None if order is None else (order.platform, order.platform_order_id)

    found = await run_in_threadpool(find)
    if found is None:
        raise HTTPException(404, f"no order {order_id}")
    return await _ask(bridge, *found, body)


@router.post(
    "/platform-orders/{platform}/{platform_order_id}/actions",
    status_code=202,
    response_model=ActionView,
    summary="Ask the platform to act on an order not (yet) stored",
    responses={200: {"description": SAME_ACTION}},
)
async def ask_platform_order_action(
    request: Request, platform: str, platform_order_id: str, body: ActionAsk
) -> Response:
    """Above all ``confirm`` and ``cancel`` of a freshly created order, also while its
    first push still waits in the inbox."""
    return await _ask(bridge_of(request), platform, platform_order_id, body)


@router.get("/actions/{action_id}", response_model=ActionView, summary="One action")
async def get_action(request: Request, action_id: RowId) -> ActionView:
    """An action with its status, platform calls made and the platform's last answer."""
    bridge = bridge_of(request)

    def find() -> ActionView | None:
        with bridge.database.reading() as session:
            row = session.get(OutboundAction, action_id)
            return None if row is None else action_view(row)

    found = await run_in_threadpool(find)
    if found is None:
        raise HTTPException(404, f"no action {action_id}")
    return found


@router.get("/actions", response_model=list[ActionView], summary="List actions")
async def list_actions(
    request: Request,
    status: actions.ActionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ActionView]:
    """Actions, newest first; ``status=failed`` for the ones a person should look at."""
    bridge = bridge_of(request)

    def query() -> list[ActionView]:
        with bridge.database.reading() as session:
            rows = actions.listing(session, status=status, limit=limit)
            return [action_view(row) for row in rows]

    return await run_in_threadpool(query)


@router.post("/actions/{action_id}/retry", response_model=ActionView, summary="Retry an action")
async def retry_action(request: Request, action_id: RowId) -> ActionView:
    """Give a failed action another round of tries."""
    bridge = bridge_of(request)
    row = await run_in_threadpool(bridge.actions.retry, action_id)
    if row is None:
        raise HTTPException(409, f"no failed action {action_id} to retry")
    return action_view(row)

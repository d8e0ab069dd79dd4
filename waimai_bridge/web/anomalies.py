"""``GET /api/v1/anomalies``: open and resolved anomalies of every order and store channel,
filtered by store, platform and rule, newest first."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from waimai_bridge.bounds import MAX_INT64
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import anomalies
from waimai_bridge.web.api import API, bridge_of
from waimai_bridge.web.views import iso

MAX_PAGE = 500

router = APIRouter(prefix="/api/v1", tags=["anomalies"], dependencies=API)


class Status(StrEnum):
    """Which anomalies to list."""

    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


IS_OPEN = {Status.OPEN: True, Status.RESOLVED: False, Status.ALL: None}


class AnomalyItem(BaseModel):
    """An anomaly with its order, or a channel's (its store and platform, no order)."""

    id: int
    rule: AnomalyRule
    detail: str
    open: bool
    order_id: int | None
    platform: str
    platform_order_id: str | None
    store_id: str
    opened_at: str
    resolved_at: str | None


class AnomalyPage(BaseModel):
    """A page of anomalies; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[AnomalyItem]
    next_cursor: str | None


def item(anomaly: anomalies.Listed) -> AnomalyItem:
    """An anomaly as the API shows it."""
    resolved = None if anomaly.resolved_at_ms is None else iso(anomaly.resolved_at_ms)
    return AnomalyItem(
        id=anomaly.anomaly_id, rule=AnomalyRule(anomaly.rule), detail=anomaly.detail,
        open=resolved is None, order_id=anomaly.order_id, platform=anomaly.platform,
        platform_order_id=anomaly.platform_order_id, store_id=anomaly.store_id,
        opened_at=iso(anomaly.opened_at_ms), resolved_at=resolved,
    )  # fmt: skip


@router.get("/anomalies", response_model=AnomalyPage, summary="List anomalies")
async def list_anomalies(
    request: Request,
    status: Status = Status.ALL,
    store_id: str | None = None,
    platform: str | None = None,
    rule: AnomalyRule | None = None,
    cursor: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="next_cursor of the page before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AnomalyPage:
    """Anomalies matching every filter given, newest first, a page at a time."""
    bridge = bridge_of(request)

    def query() -> list[anomalies.Listed]:
        with bridge.database.reading() as session:
            return anomalies.listing(
                session, is_open=IS_OPEN[status], store_id=store_id, platform=platform,
                rule=None if rule is None else rule.value, before_id=cursor, limit=limit + 1,
            )  # fmt: skip

    found = await run_in_threadpool(query)
    page, more = found[:limit], len(found) > limit
    return AnomalyPage(
        items=[item(anomaly) for anomaly in page],
        next_cursor=str(page[-1].anomaly_id) if more and page else None,
    )

"""``GET /api/v1/settlements``: the stored orders' money per store × platform × day, in
integer fen, the day in each store's time zone."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from waimai_bridge.store import settlement
from waimai_bridge.web.api import API, bridge_of

router = APIRouter(prefix="/api/v1", tags=["settlements"], dependencies=API)


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name} is not a day (YYYY-MM-DD): {value!r}") from None


@router.get("/settlements", summary="Settlement per store × platform × day")
async def settlements(
    request: Request,
    from_: Annotated[str, Query(alias="from", description="First day, YYYY-MM-DD.")],
    to: Annotated[str, Query(description="Last day (included), YYYY-MM-DD.")],
    store_id: str | None = None,
    platform: str | None = None,
) -> dict[str, Any]:
    """``{"rows": [...], "totals": {...}}``: one row per store, platform and day with
    orders, money in fen and mismatches, sorted by day, store and platform."""
    from_day, to_day = _day("from", from_), _day("to", to)
    if from_day > to_day:
        raise HTTPException(400, f"from ({from_day}) is after to ({to_day})")
    if (to_day - from_day).days + 1 > settlement.MAX_RANGE_DAYS:
        raise HTTPException(
            400, f"a settlement covers at most {settlement.MAX_RANGE_DAYS} days at a time"
        )
    bridge = bridge_of(request)
    zones = settlement.zones_of(bridge.config.stores)

    def query() -> dict[str, Any]:
        with bridge.database.reading() as session:
            found = settlement.report(
                session, from_day=from_day, to_day=to_day, zones=zones, store_id=store_id,
                platform=platform,
            )  # fmt: skip
        return found.as_json()

    return await run_in_threadpool(query)

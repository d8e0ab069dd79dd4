"""The SKU mapping over HTTP (SPEC §7.3): ``GET /api/v1/skus`` pages through it and
``PUT /api/v1/skus`` imports a batch, CSV or JSON, with the checks of ``skus import``.

A PUT upserts its lines (a line for a mapped ``(platform, sku_code)`` replaces the product)
and is all or nothing: a batch with any bad line writes nothing and answers 422 with every
problem, numbered by CSV line or JSON list index. The body is bounded before it is read.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from waimai_bridge.runtime import Bridge
from waimai_bridge.store.skus import (
    HEADER,
    ImportSummary,
    SkuFileError,
    SkuRow,
    decode_sku_csv,
    import_skus,
    list_skus,
    read_sku_csv,
    read_sku_items,
    text_problem,
)
from waimai_bridge.web.api import API, bridge_of
from waimai_bridge.web.views import MAX_PAGE, iso

router = APIRouter(prefix="/api/v1", tags=["skus"], dependencies=API)

PATH = "/api/v1/skus"
MAX_BODY_BYTES = 4 << 20
"""The largest PUT body: some 50,000 mappings."""
SHOWN_PROBLEMS = 1000
"""The problems a 422 lists at most; ``problem_count`` has them all."""
WRITE_TRIES = 3
"""Imports of the same new SKU at the same time collide on its key: the loser is run again."""
JSON_SHAPE = '{"items": [{"platform": …, "sku_code": …, "product_id": …}, …]}'


class SkuView(BaseModel):
    """One mapping: ``sku_code`` on ``platform`` is the chain's ``product_id``."""

    platform: str
    sku_code: str
    product_id: str
    updated_at: str


class SkuPage(BaseModel):
    """A page of mappings; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[SkuView]
    next_cursor: str | None


class SkuImport(BaseModel):
    """How a PUT changed the mapping: lines imported, and of them added, changed, unchanged."""

    imported: int
    added: int
    changed: int
    unchanged: int


@router.get("/skus", response_model=SkuPage, summary="List SKU mappings")
async def skus(
    request: Request,
    platform: str | None = None,
    sku_code: str | None = None,
    product_id: str | None = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> SkuPage:
    """Mappings matching every filter given, by platform and SKU code, a page at a time."""
    filters = {"platform": platform, "sku_code": sku_code, "product_id": product_id}
    for name, value in filters.items():
        problem = None if value is None else text_problem(value)
        if problem is not None:
            raise HTTPException(400, f"{name} {problem}")
    after = None if cursor is None else _after(cursor)
    bridge = bridge_of(request)

    def query() -> SkuPage:
        with bridge.database.reading() as session:
            rows, more = list_skus(
                session, platform=platform, sku_code=sku_code, product_id=product_id,
                after=after, limit=limit,
            )  # fmt: skip
            items = [
                SkuView(
                    platform=row.platform,
                    sku_code=row.sku_code,
                    product_id=row.product_id,
                    updated_at=iso(row.updated_at_ms),
                )
                for row in rows
            ]
        next_cursor = _cursor(items[-1].platform, items[-1].sku_code) if more else None
        return SkuPage(items=items, next_cursor=next_cursor)

    return await run_in_threadpool(query)


@router.put(
    "/skus",
    response_model=SkuImport,
    summary="Import SKU mappings",
    responses={
        413: {"description": f"The body is larger than {MAX_BODY_BYTES} bytes"},
        415: {"description": "Neither text/csv nor application/json (UTF-8)"},
        422: {"description": "Bad lines (`problems`, by CSV line or JSON item): nothing written"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "description": ",".join(HEADER)}},
                "application/json": {"schema": {"type": "object", "description": JSON_SHAPE}},
            },
        }
    },
)
async def put_skus(request: Request) -> Response:
    """Add or replace the mappings of a CSV (header ``platform,sku_code,product_id``) or a
    JSON body; every line is checked first, and a batch with any bad line writes nothing."""
    bridge = bridge_of(request)
    media_type = _media_type(request)
    data = await request.body()  # bounded by MAX_BODY_BYTES (web.limits)
    try:
        rows = _rows(bridge, media_type, data)
    except SkuFileError as exc:
        return _problems(exc)
    summary = await run_in_threadpool(_write, bridge, rows)
    answer = SkuImport(imported=len(rows), **vars(summary))
    return JSONResponse(answer.model_dump())


def _media_type(request: Request) -> str:
    """``text/csv`` or ``application/json``, in UTF-8; else 415."""
    media_type, *parameters = request.headers.get("content-type", "").split(";")
    media_type = media_type.strip().lower()
    if media_type not in ("text/csv", "application/json"):
        raise HTTPException(415, "send the mapping as text/csv or application/json")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(' "').lower() not in ("utf-8", "utf8"):
            raise HTTPException(415, "send the mapping in UTF-8")
    return media_type


def _rows(bridge: Bridge, media_type: str, data: bytes) -> list[SkuRow]:
    """The checked rows of the body (:class:`SkuFileError` names the bad lines)."""
    platforms = bridge.registry.platforms.keys()
    if media_type == "text/csv":
        return read_sku_csv(decode_sku_csv(data, source="body"), platforms=platforms)
    try:
        body: Any = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(body, dict) or set(body) != {"items"} or not isinstance(body["items"], list):
        raise HTTPException(422, f"the body must be {JSON_SHAPE}")
    return read_sku_items(body["items"], platforms=platforms, source="body")


def _problems(exc: SkuFileError) -> JSONResponse:
    shown = exc.problems[:SHOWN_PROBLEMS]
    content = {
        "error": f"nothing imported: {exc.summary}",
        "problem_count": len(exc.problems),
        "problems": [{exc.unit: number, "problem": problem} for number, problem in shown],
    }
    return JSONResponse(content, status_code=422)


def _write(bridge: Bridge, rows: list[SkuRow]) -> ImportSummary:
    for _ in range(WRITE_TRIES):
        try:
            return _import(bridge, rows)
        except IntegrityError:
            continue
    raise HTTPException(409, "another import wrote the same SKUs at the same time: send it again")


def _import(bridge: Bridge, rows: list[SkuRow]) -> ImportSummary:
    with bridge.database.transaction() as session:
        summaries = list(import_skus(session, rows, now_ms=bridge.clock()))
    return summaries[-1] if summaries else ImportSummary(0, 0, 0)


def _cursor(platform: str, sku_code: str) -> str:
    text = json.dumps([platform, sku_code], ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[str, str]:
    """The ``(platform, sku_code)`` a cursor continues after; 400 for anything else."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        value = None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(part, str) and text_problem(part) is None for part in value)
    ):
        raise HTTPException(400, "cursor is not a next_cursor of GET /api/v1/skus")
    return value[0], value[1]

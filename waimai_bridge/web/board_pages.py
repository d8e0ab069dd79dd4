"""The order board's pages: the board itself and its login form, server-rendered, with the
static script and style they load."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from waimai_bridge.runtime import Bridge
from waimai_bridge.settings import Scope
from waimai_bridge.store import board, changes
from waimai_bridge.web import board_i18n
from waimai_bridge.web.api import bridge_of
from waimai_bridge.web.authorizations import board_alerts
from waimai_bridge.web.board_api import board_rules, zone_of
from waimai_bridge.web.board_session import current_session

HERE = Path(__file__).resolve().parent
STATIC_PATH = "/board/static"
BOARD_PATH = "/board"
LOGIN_PATH = "/board/login"

HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Vary": "Accept-Language, Cookie",
}
"""Every page's headers: only the board's own script and style run, nothing frames it, and
no page (it holds the CSRF token and orders) is cached."""

MAX_NEXT = 500
"""The longest board URL a login leads back to."""

FILTERS = ("store_id", "platform", "state")
"""The board's filters, as its URL's query and ``/board/orders`` name them."""

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    """The board's script and style, served at :data:`STATIC_PATH`."""
    return StaticFiles(directory=HERE / "static")


@router.get(BOARD_PATH)
async def board_page(request: Request) -> Response:
    """The board of the logged-in token, holding today's cards (to the login page without a
    session)."""
    session = current_session(request)
    if session is None:
        wanted = BOARD_PATH + (f"?{request.url.query}" if request.url.query else "")
        where = f"?{urlencode({'next': wanted})}" if len(wanted) <= MAX_NEXT else ""
        return RedirectResponse(LOGIN_PATH + where, status_code=303)
    bridge = bridge_of(request)
    lang = board_i18n.language(request.headers.get("accept-language"))
    if Scope.READ not in session.scopes:
        context = {"lang": lang, "t": board_i18n.labels(lang), "error": "no_read", "next": None}
        return templates.TemplateResponse(
            request, "login.html", context, status_code=403, headers=HEADERS
        )
    filters = _filters(bridge, request.query_params)
    today = await run_in_threadpool(_today, bridge, filters)
    data = {
        **today,
        "labels": board_i18n.labels(lang),
        "stores": [
            {"id": store.store_id, "name": store.name or store.store_id}
            for store in sorted(bridge.config.stores.values(), key=lambda s: s.store_id)
        ],
        "channels": [
            {"id": name, "name": platform.manifest.display_name}
            for name, platform in sorted(bridge.registry.platforms.items())
            if name in bridge.config.platforms
        ],
        "states": list(board_i18n.STATES),
        "filters": filters,
        "can_act": Scope.ACT in session.scopes,
        "user": session.token_name,
    }
    context = {"lang": lang, "t": data["labels"], "csrf": session.csrf, "data": data}
    return templates.TemplateResponse(request, "board.html", context, headers=HEADERS)


@router.get(LOGIN_PATH)
async def login_page(
    request: Request,
    error: Annotated[str | None, Query(max_length=20)] = None,
    wanted: Annotated[str | None, Query(alias="next", max_length=MAX_NEXT)] = None,
) -> Response:
    """The login form (to the board, or where ``next`` says, when already logged in);
    ``error`` shows the wrong token's message."""
    wanted = wanted if wanted is not None and _local(wanted) else None
    if current_session(request) is not None:
        return RedirectResponse(wanted or BOARD_PATH, status_code=303)
    lang = board_i18n.language(request.headers.get("accept-language"))
    context = {
        "lang": lang,
        "t": board_i18n.labels(lang),
        "error": "login_error" if error is not None else None,
        "next": wanted,
    }
    return templates.TemplateResponse(request, "login.html", context, headers=HEADERS)


def _today(bridge: Bridge, filters: Mapping[str, str | None]) -> dict[str, Any]:
    """Today's cards as ``/board/orders`` answers them, and the channels ``/board/channels``
    flags: the first render shows them."""
    with bridge.database.reading() as session:
        last_id = changes.last_id(session)  # first: the cards are at least this new
        found = board.cards(
            session, board_rules(bridge.registry), now_ms=bridge.clock(),
            store_id=filters["store_id"], platform=filters["platform"], state=filters["state"],
            zone=zone_of(bridge, filters["store_id"]),
        )  # fmt: skip
        authorizations = board_alerts(session, bridge.config, now_ms=bridge.clock())
    return {"cards": found, "last_id": last_id, "authorizations": authorizations}


def _filters(bridge: Bridge, query: Mapping[str, str]) -> dict[str, str | None]:
    """The board's filters from its URL: a value the bridge does not know is no filter."""
    known: dict[str, Any] = {
        "store_id": bridge.config.stores,
        "platform": bridge.config.platforms,
        "state": board_i18n.STATES,
    }
    return {name: value if (value := query.get(name)) in known[name] else None for name in FILTERS}


def _local(path: str) -> bool:
    """Whether ``path`` is one of the board's own pages (where a login may lead)."""
    return (path == BOARD_PATH or path.startswith(BOARD_PATH + "?")) and "\\" not in path

"""``GET /oauth/{platform}/callback``: where a platform sends a store's owner back with the
code of their consent; the store is the one the link's single-use state was issued for,
never one the request names."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from waimai_bridge.authorization import MAX_TOKEN_LENGTH
from waimai_bridge.errors import (
    ContractViolation,
    PlatformRejected,
    TransientPlatformError,
    failure_site,
)
from waimai_bridge.models import Capability
from waimai_bridge.pipeline.credentials import CALLBACK_PATH, NotAuthorizing, StateRefused
from waimai_bridge.runtime import Bridge
from waimai_bridge.sealing import SealingUnavailable
from waimai_bridge.web import board_i18n
from waimai_bridge.web.api import bridge_of
from waimai_bridge.web.board_pages import HEADERS, templates

logger = logging.getLogger(__name__)

STATE = re.compile(r"[A-Za-z0-9_-]{1,128}")
CODE = re.compile(rf"[\x20-\x7e]{{1,{MAX_TOKEN_LENGTH}}}")
"""An authorization code: printable ASCII (RFC 6749's VSCHAR), no longer than a token."""

STATUS = {
    "authorized": 200,
    "unknown_platform": 404,
    "declined": 400,
    "state_refused": 400,
    "not_a_code": 400,
    "code_refused": 400,
    "not_bound": 400,
    "unreachable": 502,
    "unreadable": 502,
    "not_ready": 503,
}
"""Each outcome of a callback and its HTTP status."""

router = APIRouter(include_in_schema=False)


def _authorizing(bridge: Bridge, platform: str) -> bool:
    """Whether ``platform`` is configured and its plugin authorizes stores."""
    plugin = bridge.registry.platforms.get(platform)
    return (
        plugin is not None
        and platform in bridge.config.platforms
        and plugin.supports(Capability.AUTHORIZE_URL)
    )


def _single(request: Request, name: str) -> str | None:
    """A query parameter given at most once; a repeated one counts as absent."""
    values = request.query_params.getlist(name)
    return values[0] if len(values) == 1 else None


def _page(
    request: Request, bridge: Bridge, platform: str, outcome: str, store_id: str = ""
) -> Response:
    lang = board_i18n.language(request.headers.get("accept-language"))
    labels = board_i18n.labels(lang)
    plugin = bridge.registry.platforms.get(platform)
    store = bridge.config.stores.get(store_id)
    message = labels[f"oauth.{outcome}"].format(
        platform=plugin.manifest.display_name if plugin is not None else "",
        store=(store.name or store_id) if store is not None else store_id,
    )
    context = {"lang": lang, "t": labels, "outcome": outcome, "message": message}
    return templates.TemplateResponse(
        request, "oauth.html", context, status_code=STATUS[outcome], headers=HEADERS
    )


@router.get(CALLBACK_PATH)
async def callback(request: Request, platform: str) -> Response:
    """Store the credentials the platform gives for the code, for the store the state was
    issued for; a plain page says what happened (never a token, code or state)."""
    bridge = bridge_of(request)
    if not _authorizing(bridge, platform):
        return _page(request, bridge, "", "unknown_platform")
    outcome, store_id = await _complete(request, bridge, platform)
    if outcome == "authorized":
        return _page(request, bridge, platform, outcome, store_id)
    logger.info("an authorization callback of %s was refused: %s", platform, outcome)
    return _page(request, bridge, platform, outcome)


async def _complete(request: Request, bridge: Bridge, platform: str) -> tuple[str, str]:
    """The callback's outcome, and the store authorized."""
    state, code = _single(request, "state"), _single(request, "code")
    if "error" in request.query_params or not code:
        return "declined", ""
    if state is None or not STATE.fullmatch(state):
        return "state_refused", ""
    if not CODE.fullmatch(code):
        return "not_a_code", ""
    service = bridge.authorizations
    if not service.sealer.ready:
        return "not_ready", ""
    try:
        return "authorized", await run_in_threadpool(service.complete, platform, state, code)
    except StateRefused:
        return "state_refused", ""
    except NotAuthorizing:
        return "not_bound", ""
    except PlatformRejected:
        return "code_refused", ""
    except TransientPlatformError:
        return "unreachable", ""
    except ContractViolation:
        return "unreadable", ""
    except SealingUnavailable:
        return "not_ready", ""
    except Exception as exc:  # a plugin's bug, or the database away: a page, not a 500
        logger.warning("an authorization callback of %s failed: %s", platform, failure_site(exc))
        return "unreadable", ""

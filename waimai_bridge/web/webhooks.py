"""``/webhooks/{platform}[/{kind}]``: platform pushes in, the platform's ACK out.

The push is handed raw to the platform's ``parse_event``; what it returns is written to
the inbox and committed before the ACK leaves. Bad input gets 400/401 and writes nothing;
an unknown platform or kind gets 404; only the bridge's own trouble (the database is down,
a plugin breaks) answers 5xx, so that the platform sends the push again.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import DataError, SQLAlchemyError

from waimai_bridge.config import PlatformNotConfigured
from waimai_bridge.errors import ContractViolation, PushRefused
from waimai_bridge.metrics import WEBHOOK_REQUESTS, WEBHOOK_SECONDS
from waimai_bridge.models import Capability, InboundRequest, ParsedPush
from waimai_bridge.plugins import UnknownPlatform
from waimai_bridge.runtime import Bridge
from waimai_bridge.web.errors import error
from waimai_bridge.web.intake import Intake

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/{platform}", summary="A platform push")
@router.get("/webhooks/{platform}", summary="A platform push (by GET, or a URL check)")
async def push(platform: str, request: Request) -> Response:
    """A push of ``platform``; the platform's plugin decides the answer."""
    return await _receive(request, platform, None)


@router.post("/webhooks/{platform}/{kind}", summary="A platform push of one kind")
@router.get("/webhooks/{platform}/{kind}", summary="A platform push of one kind, by GET")
async def push_of_kind(platform: str, kind: str, request: Request) -> Response:
    """A push of ``platform`` to the URL of one push kind (platforms with a URL per kind)."""
    return await _receive(request, platform, kind)


async def _receive(request: Request, platform: str, kind: str | None) -> Response:
    started = time.perf_counter()
    bridge: Bridge = request.app.state.bridge
    received_at_ms = bridge.clock()
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        response: Response = error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    else:
        body = await request.body()
        inbound = InboundRequest(
            method=request.method,
            url=bridge.config.bridge.public_base_url + request.url.path,
            kind=kind,
            query=list(request.query_params.multi_items()),
            headers=dict(request.headers.items()),
            body=body,
            received_at_ms=received_at_ms,
        )
        # the plugin's hook is a pure function of the request: cheaper here than in a thread
        parsed = _parse(bridge, platform, inbound)
        if isinstance(parsed, Response):
            response = parsed
        else:
            response = await _store(request.app.state.intake, platform, parsed, received_at_ms)
    WEBHOOK_REQUESTS.labels(platform, str(response.status_code)).inc()
    WEBHOOK_SECONDS.labels(platform).observe(time.perf_counter() - started)
    return response


def _parse(bridge: Bridge, name: str, request: InboundRequest) -> ParsedPush | Response:
    """The plugin's reading of the push, or the answer that refuses it."""
    try:
        platform = bridge.registry.platform(name)
        config = bridge.config.plugin_config(name)
    except (UnknownPlatform, PlatformNotConfigured) as exc:
        return error(404, str(exc))
    if not platform.supports(Capability.PARSE_EVENT):
        return error(404, f"platform {name!r} does not receive pushes")
    try:
        parsed = platform.parse_event(request, config)
    except PushRefused as exc:
        if exc.reply is not None:
            return Response(
                exc.reply.body, status_code=exc.status, media_type=exc.reply.content_type
            )
        return error(exc.status, exc.message)
    except ContractViolation as exc:
        logger.error("push refused, the plugin broke its contract: %s", exc)
        return error(500, f"the {name} plugin broke its contract; the push was not accepted")
    except Exception:
        logger.exception("push refused, the %s plugin failed on it", name)
        return error(500, f"the {name} plugin failed on this push; it was not accepted")
    if parsed is None:
        where = f"/{request.kind}" if request.kind else ""
        return error(404, f"platform {name!r} has no push {request.method} /webhooks/{name}{where}")
    return parsed


async def _store(intake: Intake, name: str, parsed: ParsedPush, received_at_ms: int) -> Response:
    """Write the push's events to the inbox, then answer the platform's ACK."""
    if parsed.events:
        try:
            await intake.write(parsed.events, received_at_ms=received_at_ms)
        except DataError:  # the database's message may quote the push: not repeated
            logger.warning("push of %s refused by the database as invalid data", name)
            return error(400, "the push holds a value the database cannot store (such as a "
                         "NUL character); it was not accepted")  # fmt: skip
        except SQLAlchemyError:
            logger.exception("push of %s not stored", name)
            return error(503, "the push cannot be stored right now; send it again")
    reply = parsed.reply
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)

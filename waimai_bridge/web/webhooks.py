"""``/webhooks/{platform}[/{kind}]``: platform pushes in, the platform's ACK out.

The push is handed raw to the platform's ``parse_event``; what it returns is written to
the inbox (and its notices of stores' consent taken) and committed before the ACK leaves.
Bad input gets 400/401 and writes nothing; an unknown platform or kind gets 404; only the
bridge's own trouble (the database is down, a plugin breaks) answers 5xx, so that the
platform sends the push again.

Pushes are the hot path, so they skip the web framework's request handling: the app hands
them to :class:`WebhookReceiver`, a bare ASGI app (their OpenAPI entries are
:data:`OPENAPI_PATHS`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from waimai_bridge.config import PlatformNotConfigured
from waimai_bridge.errors import ContractViolation, PushRefused, failure_site
from waimai_bridge.metrics import WEBHOOK_REQUESTS, WEBHOOK_SECONDS
from waimai_bridge.models import Capability, InboundRequest, ParsedPush
from waimai_bridge.pipeline.intake import RETRY_AFTER_S, Intake, IntakeFull
from waimai_bridge.plugins import UnknownPlatform
from waimai_bridge.runtime import Bridge
from waimai_bridge.web.errors import error
from waimai_bridge.web.limits import MAX_BODY_BYTES

logger = logging.getLogger(__name__)

PREFIX = "/webhooks/"
UNKNOWN_PLATFORM = "unknown"
"""The metrics' platform label of a push to a platform no plugin serves."""
METHODS = ("GET", "POST")


class WebhookReceiver:
    """The ASGI app of ``/webhooks/{platform}`` and ``/webhooks/{platform}/{kind}``."""

    def __init__(self, bridge: Bridge, intake: Intake) -> None:
        self.bridge = bridge
        self.intake = intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        segments = route_path(scope).removeprefix(PREFIX).split("/")
        if len(segments) > 2 or "" in segments:
            response: Response = error(404, f"no webhook at {_url_path(scope)}")
        elif request.method not in METHODS:
            response = error(405, f"webhooks take {' or '.join(METHODS)}, not {request.method}",
                             headers={"Allow": ", ".join(METHODS)})  # fmt: skip
        else:
            platform, kind = segments[0], segments[1] if len(segments) == 2 else None
            response = await self.receive(request, platform, kind)
        await response(scope, receive, send)

    async def receive(self, request: Request, platform: str, kind: str | None) -> Response:
        """The answer to a push of ``platform`` (to the URL of push kind ``kind``, if any)."""
        started = time.perf_counter()
        bridge = self.bridge
        received_at_ms = bridge.clock()
        body = await request.body()
        query = request.query_params.multi_items() if request.scope["query_string"] else []
        inbound = InboundRequest(
            method=request.method,
            url=bridge.config.bridge.public_base_url + _url_path(request.scope),
            kind=kind,
            query=list(query),
            headers=dict(request.headers.items()),
            body=body,
            received_at_ms=received_at_ms,
        )
        # the plugin's hook is a pure function of the request: cheaper here than in a thread
        parsed = _parse(bridge, platform, inbound)
        if isinstance(parsed, Response):
            response: Response = parsed
        else:
            response = await _store(bridge, self.intake, platform, parsed, received_at_ms)
        # label values from the plugins, never from the URL (SPEC §9)
        label = platform if platform in bridge.registry.platforms else UNKNOWN_PLATFORM
        WEBHOOK_REQUESTS.labels(label, str(response.status_code)).inc()
        WEBHOOK_SECONDS.labels(label).observe(time.perf_counter() - started)
        return response


def _url_path(scope: Scope) -> str:
    """The request's path as Starlette's ``request.url.path`` has it, without building the
    whole URL (from the Host header) as that does."""
    path: str = scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def route_path(scope: Scope) -> str:
    """The request's path below the app's root path."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


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
    except ContractViolation as exc:  # its problem may quote the push: not logged
        logger.error("push refused, plugin %r broke the contract of %s at %s",
                     exc.plugin, exc.hook, exc.path)  # fmt: skip
        return error(500, f"the {name} plugin broke its contract; the push was not accepted")
    except Exception as exc:
        logger.error("push refused, the %s plugin failed on it: %s", name, failure_site(exc))
        return error(500, f"the {name} plugin failed on this push; it was not accepted")
    if parsed is None:
        where = f"/{request.kind}" if request.kind else ""
        return error(404, f"platform {name!r} has no push {request.method} /webhooks/{name}{where}")
    return parsed


async def _store(
    bridge: Bridge, intake: Intake, name: str, parsed: ParsedPush, received_at_ms: int
) -> Response:
    """Take the push's notices, write its events to the inbox, then answer the platform's
    ACK."""
    if parsed.notices:
        try:
            await run_in_threadpool(bridge.authorizations.take_notices, name, parsed.notices)
        except SQLAlchemyError:
            logger.exception("notices of a push of %s not stored", name)
            return error(503, "the push cannot be stored right now; send it again")
    if parsed.events:
        try:
            await intake.write(parsed.events, received_at_ms=received_at_ms)
        except IntakeFull:
            return error(503, "too many pushes wait to be stored; send this one again",
                         headers={"Retry-After": str(RETRY_AFTER_S)})  # fmt: skip
        except DataError:  # the database's message may quote the push: not repeated
            logger.warning("push of %s refused by the database as invalid data", name)
            return error(400, "the push holds a value the database cannot store (such as a "
                         "NUL character); it was not accepted")  # fmt: skip
        except SQLAlchemyError:
            logger.exception("push of %s not stored", name)
            return error(503, "the push cannot be stored right now; send it again")
    reply = parsed.reply
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)


ANSWERS = {
    "200": "The platform's ACK: the push is stored (or was already)",
    "400": "The push cannot be read",
    "401": "The signature is wrong",
    "404": "No such platform, or it takes no push at this URL",
    "413": f"The body is larger than {MAX_BODY_BYTES} bytes",
    "503": "The push cannot be stored right now (with Retry-After when too many wait); "
    "the platform sends it again",
}
"""The answers a webhook URL gives, as its OpenAPI entry lists them."""


def _operation(summary: str, method: str) -> dict[str, Any]:
    """The OpenAPI operation of a webhook URL for ``method``."""
    return {
        "tags": ["webhooks"],
        "summary": f"{summary} (by {method})",
        "description": "The platform's plugin reads the push and writes the ACK.",
        "operationId": f"{summary.lower().replace(' ', '_')}_{method.lower()}",
        "responses": {code: {"description": text} for code, text in ANSWERS.items()},
    }


def _path_item(summary: str, names: tuple[str, ...]) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in names
    ]
    return {"parameters": parameters} | {
        method.lower(): _operation(summary, method) for method in METHODS
    }


OPENAPI_PATHS: dict[str, Any] = {
    "/webhooks/{platform}": _path_item("A platform push", ("platform",)),
    "/webhooks/{platform}/{kind}": _path_item("A platform push of one kind", ("platform", "kind")),
}
"""The OpenAPI path items of the webhook URLs."""

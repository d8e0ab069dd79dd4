"""The ASGI app: webhooks, the read API, the board, the platforms' authorization callbacks,
``/healthz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from waimai_bridge import __version__
from waimai_bridge.pipeline.intake import Intake
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.gauges import DatabaseGauges
from waimai_bridge.web import (
    actions,
    anomalies,
    api,
    board_api,
    board_pages,
    board_session,
    channels,
    dead_letters,
    oauth,
    settlements,
    skus,
    subscriptions,
)
from waimai_bridge.web.errors import error, invalid
from waimai_bridge.web.health import HealthCheck
from waimai_bridge.web.limits import MAX_BODY_BYTES, BodyLimit
from waimai_bridge.web.tokens import TokenCheck
from waimai_bridge.web.webhooks import OPENAPI_PATHS, WebhookReceiver, route_path
from waimai_bridge.web.webhooks import PREFIX as PUSH_PREFIX

API_PREFIX = "/api/"
WEB_THREADS = 4
"""Threads that run the blocking part of requests (inbox writes, database reads)."""


class BridgeApp(FastAPI):
    """The bridge's FastAPI app. Every request's body is bounded first (:class:`BodyLimit`);
    pushes then go straight to the :class:`WebhookReceiver`, past FastAPI's middleware (a
    middleware that must see pushes wraps this app instead), and API requests are let in by
    their token (:class:`TokenCheck`) before a route reads them."""

    def __init__(self, bridge: Bridge, **settings: Any) -> None:
        super().__init__(**settings)
        self.state.bridge = bridge
        self.state.intake = Intake(bridge.pipeline)
        self.receiver = WebhookReceiver(bridge, self.state.intake)
        self.tokens = TokenCheck(bridge.config.bridge.api_tokens)
        self._bounded = BodyLimit(self._dispatch, _body_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._bounded(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if path.startswith(PUSH_PREFIX):
            await self.receiver(scope, receive, send)
            return
        if path.startswith(API_PREFIX) and (refusal := self.tokens.refusal(scope)) is not None:
            await refusal(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document, with the webhook URLs."""
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"] = OPENAPI_PATHS | schema.get("paths", {})
        return super().openapi()


def create_app(bridge: Bridge, *, run_worker: bool | None = None) -> BridgeApp:
    """The web app of ``bridge``; it works the queue itself when the broker is in-process
    (or when ``run_worker`` says so)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # few threads: the blocking work is short, and more threads only fight for the GIL
        to_thread.current_default_thread_limiter().total_tokens = WEB_THREADS
        await run_in_threadpool(bridge.database.ensure_schema)
        if bridge.embedded if run_worker is None else run_worker:
            bridge.start_worker()
        try:
            yield
        finally:
            await board_api.close(app)
            await app.state.intake.close()
            await run_in_threadpool(bridge.stop)

    app = BridgeApp(
        bridge,
        title="waimai-bridge",
        version=__version__,
        summary="Takeaway platform pushes in, one order model out.",
        lifespan=lifespan,
    )
    health = HealthCheck(bridge)
    gauges = _gauges(bridge)
    app.include_router(api.router)
    app.include_router(actions.router)
    app.include_router(subscriptions.router)
    app.include_router(skus.router)
    app.include_router(anomalies.router)
    app.include_router(settlements.router)
    app.include_router(dead_letters.router)
    app.include_router(channels.router)
    app.include_router(board_session.router)
    app.include_router(board_api.router)
    app.include_router(board_pages.router)
    app.include_router(oauth.router)
    app.mount(board_pages.STATIC_PATH, board_pages.static_files(), name="board-static")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # what cannot be parsed (the URL's parameters, a body that is not JSON) is a 400; a
        # parsed body that does not validate, a 422
        problems = exc.errors()
        unparsed = any(
            problem["loc"][:1] in (("query",), ("path",)) or problem["type"] == "json_invalid"
            for problem in problems
        )
        return invalid(problems, status=400 if unparsed else 422)

    @app.get("/healthz", tags=["operations"], summary="Database and broker reachable")
    async def healthz() -> Response:
        checks = await health.check()
        ok = all(value == "ok" for value in checks.values())
        body = {"status": "ok" if ok else "unavailable", **checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        def render() -> bytes:
            return generate_latest(REGISTRY) + generate_latest(gauges)

        return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)

    return app


def _gauges(bridge: Bridge) -> CollectorRegistry:
    """This app's registry of what the database holds (the process's own series are in the
    default registry)."""
    settings = bridge.config.bridge
    registry = CollectorRegistry(auto_describe=False)
    gauges = DatabaseGauges(
        bridge.database, shards=settings.shards, stores=frozenset(bridge.config.stores),
        accept_hold_ms=settings.accept_hold_seconds * 1000,
        overdue_after_ms=int(settings.resend_after_seconds * 1000), clock=bridge.clock,
        renew_ahead_ms=int(bridge.config.authorization.refresh_ahead_minutes * 60_000),
    )  # fmt: skip
    registry.register(gauges)
    return registry


def _body_limit(scope: Scope) -> int:
    """The largest body a request may send: the SKU mapping's imports are larger."""
    return skus.MAX_BODY_BYTES if route_path(scope) == skus.PATH else MAX_BODY_BYTES

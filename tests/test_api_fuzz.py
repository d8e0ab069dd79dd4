"""Every operation of ``/openapi.json`` fuzzed by schemathesis, with a token and without,
on SQLite and PostgreSQL: never a 5xx, every 4xx a JSON body naming what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.test_pipeline import AUTH, config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database
from waimai_bridge.web.app import create_app

READ_ONLY = "read-only-api-token-0001"
"""A token of the ``read`` scope only: the writes answer 403 with it."""


@pytest.fixture
def api_schema(database: Database, tmp_path: Path) -> Iterator[Any]:
    path = tmp_path / "bridge.toml"
    text = config_text(database.url).replace(
        "api_tokens = [", f'api_tokens = [{{ token = "{READ_ONLY}", scopes = ["read"] }}, ', 1
    )
    path.write_text(text, "utf-8")
    plugins = registry()
    app = create_app(Bridge(load_config(path, plugins), plugins))
    with TestClient(app):  # the app's lifespan, once: its schema, its worker
        yield schemathesis.openapi.from_asgi("/openapi.json", _started(app))


def _started(app: ASGIApp) -> ASGIApp:
    """``app`` for a caller that runs the lifespan on each call: it is running already."""

    async def started(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return started


CALLERS = {
    "no token": {},
    "a wrong token": {"Authorization": "Bearer not-a-token-of-this-bridge"},
    "a read token": {"Authorization": f"Bearer {READ_ONLY}"},
    "a full token": AUTH,
}


def test_no_server_error_and_every_refusal_says_why(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    cases = st.one_of([operation.as_strategy() for operation in operations])

    @given(case=cases)
    @settings(
        max_examples=20 * len(operations),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def calls(case: Any) -> None:
        for caller, headers in CALLERS.items():
            answer = case.call(headers={**(case.headers or {}), **headers})
            where = f"{case.method} {case.formatted_path} with {caller}"
            assert answer.status_code < 500, (where, answer.text[:500])
            if answer.status_code >= 400:
                body = json.loads(answer.text)
                assert isinstance(body, dict), (where, answer.text[:500])
                assert body.get("error"), (where, answer.text[:500])
            if caller in ("no token", "a wrong token") and case.path.startswith("/api/"):
                assert answer.status_code in (401, 413), (where, answer.status_code)

    assert len(operations) >= 15, [operation.label for operation in operations]
    calls()

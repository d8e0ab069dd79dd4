"""The web app against hostile callers and bad days: bodies bounded as they are read, tokens
and scopes checked before a body is parsed, metric labels from bounded sets, a bounded
intake, a cheap health check, timeouts on every connection, quiet loggers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError

from tests import testpay
from tests.processes import plugin_site, running_serve, wait_until
from tests.test_pipeline import AUTH, SECRET, T0, config_text, registry, send
from tests.test_subscribers import Subscriber
from waimai_bridge.cli.processes import QUIET_LOGGERS, _configure_logging
from waimai_bridge.config import load_config
from waimai_bridge.errors import ConfigError
from waimai_bridge.pipeline.broker import REDIS_TIMEOUT_S, TIME_LIMIT_MS, make_broker
from waimai_bridge.pipeline.intake import _Connection
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import CONNECT_TIMEOUT_SECONDS, STATEMENT_TIMEOUT_MS, Database
from waimai_bridge.web.app import create_app
from waimai_bridge.web.health import TIMEOUT_S, HealthCheck
from waimai_bridge.web.limits import MAX_BODY_BYTES

READ = "read-scope-api-token-01"
ACT = "act-scope-api-token-001"
SCOPED = f"""{{ token = "{READ}", scopes = ["read"] }}, {{ token = "{ACT}", scopes = ["act"] }}, """


def _client(tmp_path: Path, database_url: str, bridge_extra: str = "") -> TestClient:
    path = tmp_path / "bridge.toml"
    text_ = config_text(database_url, bridge_extra=bridge_extra)
    path.write_text(text_.replace("api_tokens = [", f"api_tokens = [{SCOPED}", 1), "utf-8")
    plugins = registry()
    return TestClient(create_app(Bridge(load_config(path, plugins), plugins)))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, f"sqlite:///{tmp_path / 'bridge.sqlite3'}") as client:
        yield client


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_all_read(tmp_path: Path) -> None:
    config = config_text(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    sent = 0

    def chunks() -> Iterator[bytes]:  # 64 MiB offered, without a Content-Length
        nonlocal sent
        for _ in range(1024):
            sent += 1
            yield b"x" * 65536

    with running_serve(plugin_site(tmp_path), config) as base:
        for path in ("/webhooks/testpay", "/api/v1/subscriptions"):
            sent = 0
            try:
                answer = httpx.post(base + path, content=chunks(), headers=AUTH, timeout=30)
                assert answer.status_code == 413, answer.text
                assert f"larger than {MAX_BODY_BYTES} bytes" in answer.json()["error"]
            except httpx.TransportError:
                pass  # the server answered and closed while the client was still sending
            assert sent * 65536 < 8 * MAX_BODY_BYTES, (path, sent)


def test_a_declared_length_over_the_limit_is_refused_unread(client: TestClient) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    for path in ("/webhooks/testpay", "/api/v1/subscriptions", "/api/v1/orders"):
        answer = client.post(path, content=b"{" * (MAX_BODY_BYTES + 1), headers=headers)
        assert answer.status_code == 413, (path, answer.text)
    answer = client.put("/api/v1/skus", content=b"x" * (MAX_BODY_BYTES + 1), headers={
        **AUTH, "content-type": "text/csv"})  # fmt: skip
    assert answer.status_code == 422, "the SKU mapping takes larger bodies"


def test_the_token_is_checked_before_the_body_is_parsed(client: TestClient) -> None:
    broken = {"content-type": "application/json"}
    for headers in ({}, {"Authorization": "Bearer not-a-configured-token-0"}):
        answer = client.post("/api/v1/subscriptions", content=b"{not json", headers={
            **broken, **headers})  # fmt: skip
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
    answer = client.post("/api/v1/subscriptions", content=b"{not json", headers={**broken, **AUTH})
    assert answer.status_code == 400, answer.text
    assert "JSON decode error" in answer.json()["error"]


def test_scopes_read_and_act(client: TestClient) -> None:
    read, act = {"Authorization": f"Bearer {READ}"}, {"Authorization": f"Bearer {ACT}"}
    assert client.get("/api/v1/orders", headers=read).status_code == 200
    assert client.get("/api/v1/orders", headers=AUTH).status_code == 200  # a plain string: all
    refused = client.get("/api/v1/orders", headers=act)
    assert refused.status_code == 403
    assert "'read' scope" in refused.json()["error"]
    writes = [
        ("POST", "/api/v1/subscriptions"),
        ("DELETE", "/api/v1/subscriptions/1"),
        ("POST", "/api/v1/orders/1/actions"),
        ("POST", "/api/v1/platform-orders/testpay/X/actions"),
        ("POST", "/api/v1/actions/1/retry"),
        ("PUT", "/api/v1/skus"),
    ]
    for method, path in writes:
        answer = client.request(method, path, headers=read, content=b"{}")
        assert answer.status_code == 403, (method, path, answer.text)
        assert "'act' scope" in answer.json()["error"]
        assert client.request(method, path, headers=act, content=b"{}").status_code != 403


@pytest.mark.parametrize(
    "tokens",
    ['["change-me"]', '[{ token = "short" }]', '[{ token = "long-enough-token-01", scopes = [] }]',
     '[{ token = "long-enough-token-01", scopes = ["write"] }]'],
)  # fmt: skip
def test_weak_or_malformed_tokens_are_refused_when_the_config_is_read(
    tmp_path: Path, tokens: str
) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(f"[bridge]\napi_tokens = {tokens}\n", "utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path, registry())
    assert "bridge.api_tokens.0" in str(refused.value)
    assert "short" not in str(refused.value).replace("shorter", "")  # the value is not shown


def test_made_up_platform_names_do_not_become_metric_labels(client: TestClient) -> None:
    for number in range(50):
        assert client.post(f"/webhooks/made-up-{number}", content=b"{}").status_code == 404
    metrics = client.get("/metrics").text
    assert "made-up" not in metrics
    assert 'waimai_webhook_requests_total{platform="unknown",status="404"}' in metrics


def test_a_full_intake_answers_503_with_retry_after(tmp_path: Path) -> None:
    """With the writer lock of the SQLite database held elsewhere, the first push waits for
    the inbox; the next is refused at once, to be sent again, and the first is stored
    once the lock goes."""
    file = tmp_path / "bridge.sqlite3"
    with _client(tmp_path, f"sqlite:///{file}", "intake_max_waiting = 1") as client:
        blocker = sqlite3.connect(file, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        answers: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: answers.append(
                send(client, testpay.push("M1", "ORDER-1", "order.created", T0))
            )
        )
        first.start()
        try:
            deadline = time.monotonic() + 10
            while client.app.state.intake._in_flight < 1:  # type: ignore[attr-defined]
                assert time.monotonic() < deadline, "the first push never reached the intake"
                time.sleep(0.01)
            refused = send(client, testpay.push("M2", "ORDER-2", "order.created", T0))
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            first.join(timeout=30)
        assert [answer.status_code for answer in answers] == [200]


def _bridge(tmp_path: Path) -> Bridge:
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'bridge.sqlite3'}"), "utf-8")
    plugins = registry()
    bridge = Bridge(load_config(path, plugins), plugins)
    bridge.database.migrate()
    return bridge


def test_health_checks_run_one_at_a_time(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path)
    health = HealthCheck(bridge)
    checkouts = []
    event.listen(bridge.database.engine, "checkout", lambda *_: checkouts.append(1))

    async def at_once() -> list[dict[str, str]]:
        return await asyncio.gather(*(health.check() for _ in range(20)))

    assert asyncio.run(at_once()) == [{"database": "ok", "broker": "ok"}] * 20
    assert len(checkouts) == 1
    assert asyncio.run(at_once())[0] == {"database": "ok", "broker": "ok"}
    assert len(checkouts) == 1, "a fresh answer is reused"


def test_a_health_check_that_hangs_answers_in_bounded_time(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path)
    health = HealthCheck(bridge)
    blocker = sqlite3.connect(tmp_path / "bridge.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the check's transaction waits for the writer lock
    try:
        started = time.monotonic()
        answer = asyncio.run(health.check())
        assert answer["database"] == "unreachable: no answer"
        assert time.monotonic() - started < TIMEOUT_S + 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_postgresql_connections_have_a_statement_timeout(postgres_database: Database) -> None:
    database = Database(postgres_database.url)
    try:
        with database.transaction() as session:
            shown = session.execute(text("SHOW statement_timeout")).scalar_one()
        assert shown == f"{STATEMENT_TIMEOUT_MS // 1000}s"
        with database.transaction(durable=False) as session:
            assert session.execute(text("SHOW statement_timeout")).scalar_one() == shown
        url = postgres_database.url + "?options=-c%20statement_timeout%3D1234"
        with Database(url).transaction() as session:  # the URL's own setting wins
            assert session.execute(text("SHOW statement_timeout")).scalar_one() == "1234ms"
    finally:
        database.dispose()


Shown = tuple[str, str, str, str, str | None]
"""A connection's user, database, statement timeout, application name and connect timeout."""


def test_the_intake_s_own_connection_has_the_same_timeouts_and_takes_the_url_s_settings(
    postgres_database: Database,
) -> None:
    async def settings(url: str) -> Shown:
        connection = _Connection(url)

        async def show(opened: Any) -> Shown:
            shown = await (await opened.execute(
                "SELECT current_user, current_database(), current_setting('statement_timeout'),"
                " current_setting('application_name')"
            )).fetchone()  # fmt: skip
            return (*shown, opened.info.get_parameters().get("connect_timeout"))

        try:
            found: Shown = await connection.run(show)
            return found
        finally:
            await connection.close()

    url = make_url(postgres_database.url)
    assert asyncio.run(settings(postgres_database.url)) == (
        url.username, url.database, f"{STATEMENT_TIMEOUT_MS // 1000}s", "",
        str(CONNECT_TIMEOUT_SECONDS),
    )  # fmt: skip
    given = postgres_database.url + (
        "?options=-c%20statement_timeout%3D1234&application_name=intake&connect_timeout=7"
    )
    assert asyncio.run(settings(given))[2:] == ("1234ms", "intake", "7")  # the URL's own win


def test_statement_parameters_stay_out_of_errors(postgres_database: Database) -> None:
    with pytest.raises(DBAPIError) as failed, postgres_database.transaction() as session:
        session.execute(text("SELECT CAST(:secret AS integer)"), {"secret": "customer-13800138000"})
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(failed.value)


def test_redis_connections_time_out(redis_url: str) -> None:
    broker = make_broker(redis_url)
    options = broker.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert options["socket_timeout"] == REDIS_TIMEOUT_S
    assert options["socket_connect_timeout"] > 0


def test_loggers_that_would_show_urls_or_parameters_stay_quiet() -> None:
    root = logging.getLogger()
    kept = root.level, list(root.handlers)
    try:
        _configure_logging("debug")
        for name in QUIET_LOGGERS:
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        root.setLevel(kept[0])
        root.handlers[:] = kept[1]
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_no_secret_reaches_the_logs_of_a_running_bridge(tmp_path: Path) -> None:
    """A real ``serve`` at debug level, with a subscriber whose URL holds credentials and
    that refuses its first updates, a push with a wrong signature and a good one: its log
    holds none of the config's secrets (checked as every test process's are), nor the
    subscriber URL's password, nor the subscription's secret, nor a signature."""
    password, secret = "subscriber-url-password-42", "subscription-secret-0042"
    subscriber = Subscriber()
    subscriber.down = True
    url = subscriber.url.replace("http://", f"http://hook-user:{password}@")
    config = config_text(
        f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
        bridge_extra="subscriber_allow_private = true\nsubscriber_retry_seconds = 0.2",
    )
    try:
        with running_serve(plugin_site(tmp_path), config) as base:
            answer = httpx.post(f"{base}/api/v1/subscriptions", headers=AUTH,
                                json={"url": url, "secret": secret})  # fmt: skip
            assert answer.status_code == 201, answer.text
            body = testpay.push("M1", "LOGGED-1", "order.created", T0)
            signature = testpay.sign(body, SECRET)
            wrong = httpx.post(f"{base}/webhooks/testpay", content=body,
                               headers={testpay.SIGNATURE_HEADER: signature[::-1]})  # fmt: skip
            assert wrong.status_code == 401
            accepted = testpay.push("M2", "LOGGED-1", "order.accepted", T0 + 1)
            for push in (body, accepted):
                signed = {testpay.SIGNATURE_HEADER: testpay.sign(push, SECRET)}
                good = httpx.post(f"{base}/webhooks/testpay", content=push, headers=signed)
                assert good.status_code == 200
            wait_until(lambda: subscriber.refused >= 2, 30, "refused deliveries")
            subscriber.down = False
            wait_until(subscriber.updates, 30, "a delivered update")
    finally:
        subscriber.close()
    logs = "".join(log.read_text("utf-8") for log in (tmp_path / "logs").glob("*.log"))
    assert "DEBUG" in logs, "the bridge logged at debug level"
    for leaked in (password, secret, signature, signature[::-1]):
        assert leaked not in logs


def test_every_plugins_api_timeout_ends_well_inside_a_messages_time_limit() -> None:
    plugins = registry()
    settings = [
        (name, key, schema)
        for name, platform in plugins.platforms.items()
        for key, schema in platform.manifest.config_schema.get("properties", {}).items()
        if key.endswith("timeout_seconds")
    ]
    assert {"eleme", "meituan"} <= {name for name, _, _ in settings}
    for name, key, schema in settings:
        assert schema.get("maximum", float("inf")) <= TIME_LIMIT_MS / 1000 / 2, (name, key)

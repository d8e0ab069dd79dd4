"""Store authorization at work in the core, on SQLite and PostgreSQL, with a test plugin
(``renewpay``) whose token endpoint is a real HTTP server on 127.0.0.1: credentials renewed
ahead of their expiry by one worker at a time, a platform that cannot answer asked again
after a growing wait, a refused renewal leaving the channel unauthorized (its actions failed
at once without a platform call, its pulls skipped, an anomaly open, counted), a store's
notice through a real push, authorization again resolving the anomaly; no token in any log
record or API answer."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from tests import testpay
from tests.sample_plugin import PRICE
from waimai_bridge.config import load_config
from waimai_bridge.pipeline.credentials import ChannelUnauthorized, Renewer
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.plugin_api import (
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    AuthorizationRequest,
    AuthorizationStart,
    ChannelNotice,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
    FetchedOrder,
    InboundRequest,
    NativeEvent,
    OrderRef,
    ParsedPush,
    PlatformRejected,
    PluginConfig,
    PriceBreakdown,
    PulledEvents,
    PullRequest,
    StateChange,
    TransientPlatformError,
    hookimpl,
)
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.sealing import new_key
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import anomalies
from waimai_bridge.store import credentials as store
from waimai_bridge.store.credentials import ChannelAuthorization, CredentialStatus
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import AuthorizationState, OutboundAction
from waimai_bridge.web.app import create_app

NAME = "renewpay"
SECRET = "renewpay-push-secret"
API_TOKEN = "authorization-worker-api-token-0001"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
T0 = 1_780_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
LIFETIME_S = 2 * 3600
"""How long the token endpoint's access tokens last."""

CONFIG = """
[bridge]
database_url = "{url}"
public_base_url = "https://bridge.example.com"
api_tokens = ["{api_token}"]
accept_hold_seconds = 0
action_retry_seconds = 0
pull_interval_seconds = 60

[authorization]
keys = ["{key}"]
refresh_ahead_minutes = 60
interval_seconds = {interval}
retry_seconds = 30
retry_max_seconds = 120
state_minutes = 15

[platforms.renewpay]
secret = "{secret}"
token_url = "{token_url}"

[stores.S001]
renewpay = {{ shop = "100001" }}

[stores.S002]
renewpay = {{ shop = "100002" }}
"""


# --------------------------------------------------------------------------- the platform


@dataclass
class TokenEndpoint:
    """The platform's token endpoint: answers new tokens, cannot answer (``down``), or
    refuses (``refusing``); keeps every token it issued and every grant it was asked."""

    down: bool = False
    refusing: bool = False
    grants: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.grants.append(form)
        if self.down:
            return 503, {"error": "temporarily_unavailable"}
        if self.refusing:
            return 400, {"error": "invalid_grant"}
        access = f"access-{len(self.issued)}-{secrets.token_hex(8)}"
        refresh = f"refresh-{len(self.issued)}-{secrets.token_hex(8)}"
        self.issued += [access, refresh]
        return 200, {"access_token": access, "refresh_token": refresh,
                     "expires_in": LIFETIME_S, "scope": "all"}  # fmt: skip


def serve(endpoint: TokenEndpoint) -> tuple[ThreadingHTTPServer, str]:
    """The endpoint served over HTTP on 127.0.0.1 in a thread; the server and its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            status, body = endpoint.answer(form)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/token"


class RenewPay:
    """``testpay``'s pushes and orders, authorization hooks against the token endpoint, a
    store's notices (``auth.withdrawn``, ``auth.restored`` pushes), and every platform call
    with the access token it carried."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.client = httpx.Client(trust_env=False, timeout=5.0)
        self.calls: list[tuple[str, str | None]] = []
        """(store, access token) of each action call."""
        self.pulls: list[tuple[str, str | None]] = []
        self.fetches: list[str] = []

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        authorizing = ["authorize_url", "exchange_code", "refresh_credentials"]
        schema = testpay.MANIFEST["config_schema"]
        return testpay.MANIFEST | {
            "name": NAME, "contract_version": "1.6", "actions": ["confirm", "cancel"],
            "capabilities": [*testpay.MANIFEST["capabilities"], "outbound_action",
                             "pull_events", "fetch_order", *authorizing],
            "config_schema": schema | {
                "required": ["secret", "token_url"],
                "properties": {**schema["properties"], "token_url": {"type": "string"}},
            },
        }  # fmt: skip

    @hookimpl
    def parse_event(self, request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
        message = json.loads(request.body) if request.body.strip() else {}
        if str(message.get("code", "")).startswith("auth."):
            signature = request.headers.get(testpay.SIGNATURE_HEADER, "")
            assert signature == testpay.sign(request.body, config.settings["secret"])
            store_id = config.store_for("shop", message["shop"])
            assert store_id is not None
            notice = ChannelNotice(store_id=store_id, authorized=message["code"] == "auth.restored")
            return ParsedPush(reply=testpay.ACK, events=[], notices=[notice])
        parsed = testpay.parse_event(request, config)
        if parsed is None:
            return None
        events = [event.model_copy(update={"platform": NAME}) for event in parsed.events]
        return ParsedPush(reply=parsed.reply, events=events)

    @hookimpl
    def map_state(self, event: NativeEvent) -> StateChange:
        return testpay.map_state(event)

    @hookimpl
    def price_breakdown(self, order: NativeEvent) -> PriceBreakdown | None:
        return testpay.price_breakdown(order)

    @hookimpl
    def order_details(self, order: NativeEvent) -> None:
        return None

    @hookimpl
    def outbound_action(self, action: ActionRequest, config: PluginConfig) -> ActionResult:
        self.calls.append((action.store_id, config.access_tokens.get(action.store_id)))
        return ActionResult(outcome=ActionOutcome.DONE)

    @hookimpl
    def pull_events(self, pull: PullRequest, config: PluginConfig) -> PulledEvents:
        self.pulls.append((pull.store_id, config.access_tokens.get(pull.store_id)))
        return PulledEvents(events=[], receipt=None, more=False)

    @hookimpl
    def fetch_order(self, order: OrderRef, config: PluginConfig) -> FetchedOrder | None:
        self.fetches.append(order.platform_order_id)
        return None

    @hookimpl
    def authorize_url(
        self, request: AuthorizationRequest, config: PluginConfig
    ) -> AuthorizationStart:
        base = str(config.settings["token_url"]).removesuffix("/token")
        return AuthorizationStart(url=f"{base}/authorize?state={request.state}")

    @hookimpl
    def exchange_code(self, exchange: CodeExchange, config: PluginConfig) -> Credentials:
        assert exchange.code is not None
        return self.token({"grant_type": "authorization_code", "code": exchange.code}, config)

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        token = refresh.credentials.refresh_token
        assert token is not None
        return self.token({"grant_type": "refresh_token", "refresh_token": token}, config)

    def token(self, form: dict[str, str], config: PluginConfig) -> Credentials:
        try:
            response = self.client.post(str(config.settings["token_url"]), data=form)
        except httpx.TransportError as exc:
            raise TransientPlatformError(type(exc).__name__) from None
        answer = response.json()
        if response.status_code >= 500:
            raise TransientPlatformError("the token endpoint cannot answer", code="503")
        if response.status_code != 200:
            raise PlatformRejected("the token endpoint refused", code=str(answer["error"]))
        return Credentials(
            access_token=answer["access_token"], refresh_token=answer["refresh_token"],
            expires_at_ms=self.clock() + int(answer["expires_in"]) * SECOND,
            scope=answer["scope"],
        )  # fmt: skip


# --------------------------------------------------------------------------- the bridge


class Authorizing:
    """A bridge with the renewpay plugin and its token endpoint; its clock reads
    :attr:`now`."""

    def __init__(self, database: Database, folder: Path, *, interval: float = 60) -> None:
        self.now = T0
        self.endpoint = TokenEndpoint()
        self.server, token_url = serve(self.endpoint)
        self.platform = RenewPay(lambda: self.now)
        path = folder / "bridge.toml"
        path.write_text(CONFIG.format(
            url=database.url, api_token=API_TOKEN, key=new_key(), interval=interval,
            secret=SECRET, token_url=token_url,
        ), "utf-8")  # fmt: skip
        self.registry = PluginRegistry()
        self.registry.add(NAME, self.platform)
        self.bridge = Bridge(
            load_config(path, self.registry), self.registry, clock=lambda: self.now
        )
        self.orders = 0

    def close(self) -> None:
        self.bridge.stop()
        self.server.shutdown()
        self.server.server_close()
        self.platform.client.close()

    def authorize(self, store_id: str) -> None:
        """The store's owner consents on the platform's page, which sends them back with a
        code; the bridge exchanges it."""
        started = self.bridge.authorizations.start(NAME, store_id)
        assert started.url is not None
        (state,) = parse_qs(urlsplit(started.url).query)["state"]
        code = f"code-{secrets.token_hex(8)}"
        assert self.bridge.authorizations.complete(NAME, state, code) == store_id

    def channel(self, store_id: str) -> ChannelAuthorization:
        with self.bridge.database.reading() as session:
            (found,) = store.listing(
                session, now_ms=self.now, ahead_ms=HOUR, bound=[(NAME, store_id)],
                store_id=store_id,
            )  # fmt: skip
        return found

    def push(self, body: bytes) -> None:
        """A push taken into the inbox and applied."""
        request = InboundRequest(
            method="POST", url="u", kind=None, query=[], received_at_ms=self.now, body=body,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)},
        )  # fmt: skip
        parsed = self.registry.platform(NAME).parse_event(
            request, self.bridge.config.plugin_config(NAME)
        )
        assert parsed is not None
        write_pushes(self.bridge.pipeline, [(parsed.events, self.now)])
        for store_id in ("S001", "S002"):
            self.bridge.applier.process_shard(self.bridge.pipeline.shard_of(store_id))

    def act(self, store_id: str) -> OutboundAction:
        """A new order of the store, confirmed by the chain's system; the action as it
        ended."""
        self.orders += 1
        order = f"A-{self.orders}"
        shop = "100001" if store_id == "S001" else "100002"
        self.push(testpay.push(f"m{self.orders}", order, "order.created", self.now, shop=shop,
                               price=PRICE))  # fmt: skip
        actions = self.bridge.actions
        asked = actions.ask(platform=NAME, platform_order_id=order, action=Action.CONFIRM,
                            reason=None, key=f"confirm-{order}")  # fmt: skip
        actions.perform(asked.action.id)
        with self.bridge.database.transaction() as session:
            row = session.get(OutboundAction, asked.action.id)
            assert row is not None
            session.expunge(row)
        return row

    def last_call(self) -> tuple[str, str | None]:
        """The store and access token of the platform's last action call."""
        return self.platform.calls[-1]

    def open_anomalies(self) -> list[anomalies.Listed]:
        with self.bridge.database.reading() as session:
            return anomalies.listing(
                session, is_open=True, rule=AnomalyRule.CHANNEL_UNAUTHORIZED.value
            )

    def client(self) -> TestClient:
        """The bridge's web app (its worker not started: the test drives the work)."""
        return TestClient(create_app(self.bridge, run_worker=False))


@pytest.fixture
def authorizing(database: Database, tmp_path: Path) -> Iterator[Authorizing]:
    made = Authorizing(database, tmp_path)
    try:
        yield made
    finally:
        made.close()


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def renewals(outcome: str) -> float:
    return counted("waimai_credential_renewals_total", platform=NAME, outcome=outcome)


# --------------------------------------------------------------------------- renewals


def test_credentials_are_renewed_ahead_of_expiry_and_the_next_action_carries_the_new_token(
    authorizing: Authorizing,
) -> None:
    authorizing.authorize("S001")
    first_access, first_refresh = authorizing.endpoint.issued
    assert authorizing.act("S001").status == "done"
    assert authorizing.platform.calls == [("S001", first_access)]
    assert authorizing.act("S002").status == "done"  # no stored credentials: the static one
    assert authorizing.last_call() == ("S002", None)

    renewed_before = renewals("renewed")
    expires = T0 + LIFETIME_S * SECOND
    authorizing.now = expires - HOUR - MINUTE
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert (done.renewed, done.failed, done.refused) == ([], [], [])
    assert len(authorizing.endpoint.grants) == 1, "not due yet: the endpoint is not asked"

    authorizing.now = expires - HOUR + MINUTE
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert done.renewed == [f"{NAME}/S001"]
    assert authorizing.endpoint.grants[-1] == {
        "grant_type": "refresh_token",
        "refresh_token": first_refresh,
    }
    new_access = authorizing.endpoint.issued[2]
    assert renewals("renewed") == renewed_before + 1
    channel = authorizing.channel("S001")
    assert channel.status == CredentialStatus.ACTIVE
    assert channel.expires_at_ms == authorizing.now + LIFETIME_S * SECOND
    assert channel.authorized_at_ms == T0, "a renewal keeps the date of the consent"

    assert authorizing.act("S001").status == "done"
    assert authorizing.last_call() == ("S001", new_access)
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert done.renewed == [], "renewed once"


def test_a_platform_that_cannot_answer_is_asked_again_after_a_growing_wait(
    authorizing: Authorizing,
) -> None:
    authorizing.authorize("S001")
    authorizing.endpoint.down = True
    transient_before = renewals("transient")
    authorizing.now = T0 + LIFETIME_S * SECOND - 30 * MINUTE
    asked = len(authorizing.endpoint.grants)
    for wait_s in (30, 60, 120, 120):  # doubled each time, up to retry_max_seconds
        done = authorizing.bridge.renewer.round()
        assert done is not None
        assert done.failed == [f"{NAME}/S001"]
        asked += 1
        assert len(authorizing.endpoint.grants) == asked
        authorizing.now += wait_s * SECOND - 1
        done = authorizing.bridge.renewer.round()
        assert done is not None
        assert done.failed == [], "not asked again before the wait is over"
        assert len(authorizing.endpoint.grants) == asked
        authorizing.now += 1
    channel = authorizing.channel("S001")
    assert (channel.status, channel.failures) == (CredentialStatus.EXPIRING, 4)
    assert channel.problem == "TransientPlatformError 503"
    assert renewals("transient") == transient_before + 4
    assert authorizing.act("S001").status == "done", "the old token still serves meanwhile"

    authorizing.endpoint.down = False
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert done.renewed == [f"{NAME}/S001"]
    channel = authorizing.channel("S001")
    assert (channel.status, channel.failures, channel.problem) == (
        CredentialStatus.ACTIVE, 0, None
    )  # fmt: skip


def test_a_refused_renewal_makes_the_channel_unauthorized_until_it_is_authorized_again(
    authorizing: Authorizing, caplog: pytest.LogCaptureFixture
) -> None:
    authorizing.authorize("S001")
    authorizing.endpoint.refusing = True
    refused_before = renewals("refused")
    opened_before = counted("waimai_anomalies_total", rule="channel_unauthorized", change="opened")
    authorizing.now = T0 + LIFETIME_S * SECOND - 30 * MINUTE
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert done.refused == [f"{NAME}/S001"]
    channel = authorizing.channel("S001")
    assert channel.status == CredentialStatus.UNAUTHORIZED
    assert (
        channel.problem
        == "the platform refused to renew its credentials (PlatformRejected invalid_grant)"
    )
    assert renewals("refused") == refused_before + 1
    assert counted("waimai_anomalies_total", rule="channel_unauthorized",
                   change="opened") == opened_before + 1  # fmt: skip
    (anomaly,) = authorizing.open_anomalies()
    assert (anomaly.platform, anomaly.store_id, anomaly.platform_order_id, anomaly.order_id) == (
        NAME, "S001", None, None
    )  # fmt: skip
    assert "refused" in anomaly.detail

    # an unauthorized channel is not renewed again
    asked = len(authorizing.endpoint.grants)
    authorizing.now += HOUR
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert (done.renewed, done.refused, done.failed) == ([], [], [])
    assert len(authorizing.endpoint.grants) == asked

    # actions fail at once, without a platform call; the other store's go out
    calls = len(authorizing.platform.calls)
    performed = counted("waimai_action_attempts_total", platform=NAME, action="confirm",
                        outcome="rejected")  # fmt: skip
    ended = counted("waimai_actions_finished_total", platform=NAME, action="confirm",
                    status="failed")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="waimai_bridge.pipeline.actions"):
        failed = authorizing.act("S001")
    assert [r.getMessage() for r in caplog.records if r.name.endswith(".actions")] == [
        f"action {failed.id} failed without a platform call: store S001 is unauthorized on {NAME}"
    ]
    assert counted("waimai_actions_finished_total", platform=NAME, action="confirm",
                   status="failed") == ended + 1  # fmt: skip
    assert (failed.status, failed.result_code, failed.attempts) == ("failed", "UNAUTHORIZED", 1)
    assert failed.result_message == (
        f"store 'S001' has withdrawn or lost its authorization of the {NAME} app: authorize it"
        f" again (waimai-bridge auth url --platform {NAME} --store S001)"
    )
    assert len(authorizing.platform.calls) == calls
    assert counted("waimai_action_attempts_total", platform=NAME, action="confirm",
                   outcome="rejected") == performed, "no platform call counted"  # fmt: skip
    assert authorizing.act("S002").status == "done"
    assert authorizing.last_call() == ("S002", None)

    # pulls and fetches skip the store, with one line a round
    with caplog.at_level(logging.INFO, logger="waimai_bridge.pipeline.pulls"):
        done_pull = authorizing.bridge.puller.round()
        assert done_pull is not None
        authorizing.bridge.puller.report(done_pull)
    assert done_pull.unauthorized == {f"{NAME}/S001"}
    assert [store_id for store_id, _ in authorizing.platform.pulls] == ["S002"]
    (skipped,) = [r for r in caplog.records if r.name == "waimai_bridge.pipeline.pulls"]
    assert skipped.getMessage() == (
        f"not pulled or fetched, the channel is unauthorized: ['{NAME}/S001']"
    )
    assert done_pull.failed == []
    with pytest.raises(ChannelUnauthorized, match="authorize it again"):
        authorizing.bridge.puller.fetch(NAME, "S001", "A-1")
    assert authorizing.platform.fetches == []

    # authorized again: active, the anomaly resolved, actions carry the new token
    authorizing.endpoint.refusing = False
    authorizing.authorize("S001")
    assert authorizing.channel("S001").status == CredentialStatus.ACTIVE
    assert authorizing.open_anomalies() == []
    with authorizing.bridge.database.reading() as session:
        (resolved,) = anomalies.listing(session, is_open=False, store_id="S001")
    assert resolved.resolved_at_ms == authorizing.now
    assert authorizing.act("S001").status == "done"
    assert authorizing.last_call() == ("S001", authorizing.endpoint.issued[-2])


def test_one_worker_at_a_time_renews_and_expired_link_states_go(
    authorizing: Authorizing,
) -> None:
    assert authorizing.bridge.renewer in authorizing.bridge.scheduled
    assert authorizing.bridge.renewer.lease == "credentials"
    authorizing.authorize("S001")
    authorizing.bridge.authorizations.start(NAME, "S001")  # a link never followed
    another = Renewer(authorizing.bridge.authorizations)  # another worker's
    assert authorizing.bridge.renewer.round() is not None
    assert another.round() is None, "the lease is held"

    authorizing.now += 15 * MINUTE + 1
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert done.forgotten == 2  # the used state and the unused one
    with authorizing.bridge.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(AuthorizationState)) == 0


def test_a_renewer_switched_off_is_not_scheduled(database: Database, tmp_path: Path) -> None:
    made = Authorizing(database, tmp_path, interval=0)
    try:
        assert made.bridge.renewer in made.bridge.jobs
        assert made.bridge.renewer not in made.bridge.scheduled
    finally:
        made.close()


# --------------------------------------------------------------------------- notices


def notice(code: str, shop: str = "100001") -> bytes:
    return json.dumps({"id": secrets.token_hex(4), "shop": shop, "code": code}).encode()


def send(client: TestClient, body: bytes) -> httpx.Response:
    headers = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
    answer: httpx.Response = client.post(f"/webhooks/{NAME}", content=body, headers=headers)
    return answer


def test_a_store_withdrawing_its_consent_by_a_push_is_unauthorized_until_it_gives_it_back(
    authorizing: Authorizing,
) -> None:
    authorizing.authorize("S001")
    withdrawn = counted("waimai_channel_notices_total", platform=NAME, change="withdrawn")
    client = authorizing.client()
    for _ in range(2):  # the platform sends it again: nothing more changes
        answer = send(client, notice("auth.withdrawn"))
        assert (answer.status_code, answer.text) == (200, testpay.ACK.body)
        assert authorizing.channel("S001").status == CredentialStatus.UNAUTHORIZED
        assert len(authorizing.open_anomalies()) == 1
    assert counted("waimai_channel_notices_total", platform=NAME,
                   change="withdrawn") == withdrawn + 2  # fmt: skip
    assert authorizing.channel("S001").problem == "the store withdrew its consent"
    calls = len(authorizing.platform.calls)
    assert authorizing.act("S001").result_code == "UNAUTHORIZED"
    assert len(authorizing.platform.calls) == calls

    listed = client.get("/api/v1/anomalies", params={"status": "open"}, headers=AUTH).json()
    (item,) = listed["items"]
    assert (item["rule"], item["platform"], item["store_id"]) == (
        "channel_unauthorized", NAME, "S001"
    )  # fmt: skip
    assert (item["platform_order_id"], item["order_id"], item["open"]) == (None, None, True)
    by_store = client.get("/api/v1/anomalies", params={"store_id": "S001"}, headers=AUTH)
    assert [found["id"] for found in by_store.json()["items"]] == [item["id"]]
    metrics = client.get("/metrics").text
    assert f'waimai_channels{{platform="{NAME}",status="unauthorized"}} 1.0' in metrics
    assert f'waimai_channels{{platform="{NAME}",status="active"}} 0.0' in metrics
    assert 'waimai_anomalies_open{rule="channel_unauthorized"} 1.0' in metrics
    assert 'waimai_store_anomalies_open{store="S001"} 1.0' in metrics

    answer = send(client, notice("auth.restored"))
    assert answer.status_code == 200
    assert authorizing.channel("S001").status == CredentialStatus.ACTIVE
    assert authorizing.open_anomalies() == []
    assert authorizing.act("S001").status == "done"


def test_a_static_store_withdrawing_its_consent_has_an_anomaly_and_its_actions_still_go(
    authorizing: Authorizing,
) -> None:
    client = authorizing.client()
    assert send(client, notice("auth.withdrawn", shop="100002")).status_code == 200
    assert authorizing.channel("S002").status == CredentialStatus.STATIC
    (anomaly,) = authorizing.open_anomalies()
    assert (anomaly.store_id, anomaly.detail) == ("S002", "the store withdrew its consent")
    assert authorizing.act("S002").status == "done"
    assert send(client, notice("auth.restored", shop="100002")).status_code == 200
    assert authorizing.open_anomalies() == []


def test_a_push_whose_notices_cannot_be_stored_is_asked_for_again(
    authorizing: Authorizing, tmp_path: Path
) -> None:
    client = authorizing.client()
    unreachable = Database(f"sqlite:///{tmp_path / 'no-such-folder' / 'bridge.sqlite3'}")
    authorizing.bridge.pipeline.database = unreachable
    try:
        answer = send(client, notice("auth.withdrawn"))
    finally:
        unreachable.dispose()
    assert answer.status_code == 503


# --------------------------------------------------------------------------- secrets


def test_no_token_is_ever_logged_or_answered(
    authorizing: Authorizing, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    authorizing.authorize("S001")
    authorizing.act("S001")
    authorizing.now = T0 + LIFETIME_S * SECOND - 30 * MINUTE
    authorizing.endpoint.down = True
    authorizing.bridge.renewer.round()
    authorizing.endpoint.down = False
    authorizing.now += 30 * SECOND
    authorizing.bridge.renewer.round()
    authorizing.endpoint.refusing = True
    authorizing.now = authorizing.channel("S001").expires_at_ms or 0
    done = authorizing.bridge.renewer.round()
    assert done is not None
    assert done.refused == [f"{NAME}/S001"]
    authorizing.bridge.renewer.report(done)
    authorizing.act("S001")
    client = authorizing.client()
    send(client, notice("auth.withdrawn"))
    authorizing.endpoint.refusing = False
    authorizing.authorize("S001")

    secrets_issued = authorizing.endpoint.issued
    assert len(secrets_issued) == 6
    codes = [grant["code"] for grant in authorizing.endpoint.grants if "code" in grant]
    assert len(codes) == 2
    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    assert "store S001 authorized" in logged
    assert "unauthorized" in logged
    answers = [
        client.get("/api/v1/anomalies", headers=AUTH).text,
        client.get("/api/v1/actions", headers=AUTH).text,
        client.get("/api/v1/orders", headers=AUTH).text,
        client.get("/metrics").text,
        client.get("/api/v1/stores/S001/channels", headers=AUTH).text,
    ]
    for secret in [*secrets_issued, *codes]:
        assert secret not in logged
        for answer in answers:
            assert secret not in answer

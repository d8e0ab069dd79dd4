"""The fake Eleme's authorize page and token endpoint refuse what Eleme's would (platforms.md
§2.1): another app, a request without the app's Basic auth or form body, a grant it does
not know, a consent of another shop revoked, and the type-100 push it signs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from waimai_bridge_eleme.signing import push_signature
from waimai_bridge_eleme.testing import FIXTURE_SETTINGS, FakeEleme

APP_KEY = str(FIXTURE_SETTINGS["app_key"])
SECRET = str(FIXTURE_SETTINGS["app_secret"])
CALLBACK = "https://bridge.example.com/oauth/eleme/callback"
BASIC = "Basic " + base64.b64encode(f"{APP_KEY}:{SECRET}".encode()).decode()
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def fake() -> Iterator[FakeEleme]:
    with FakeEleme.for_fixtures() as running:
        yield running


def visit(fake: FakeEleme, **query: str) -> httpx.Response:
    params = {"response_type": "code", "client_id": APP_KEY, "redirect_uri": CALLBACK, **query}
    return httpx.get(f"{fake.oauth_base}/authorize?{urlencode(params)}", timeout=5)


def token(
    fake: FakeEleme, form: dict[str, str], *, auth: str = BASIC, kind: str = FORM
) -> httpx.Response:
    headers = {"content-type": kind, **({"authorization": auth} if auth else {})}
    return httpx.post(f"{fake.oauth_base}/token", content=urlencode(form), headers=headers)


def code_of(page: httpx.Response) -> str:
    assert page.status_code == 302
    return parse_qs(urlsplit(page.headers["location"]).query)["code"][0]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"client_id": "another-app"}, 400),
        ({"response_type": "token"}, 400),
        ({"redirect_uri": "javascript:alert(1)"}, 400),
        ({"state": "abcdefghijklmnop"}, 302),
    ],
)
def test_the_authorize_page_consents_only_for_the_app(
    fake: FakeEleme, query: dict[str, str], status: int
) -> None:
    page = visit(fake, **query)
    assert page.status_code == status
    if status == 302:
        back = parse_qs(urlsplit(page.headers["location"]).query)
        assert back["state"] == [query["state"]]
        assert len(back["code"][0]) >= 16


@pytest.mark.parametrize(
    ("auth", "kind", "grant", "status", "error"),
    [
        ("", FORM, "client_credentials", 401, "invalid_client"),
        ("Basic " + base64.b64encode(b"wYO4C8ZLzB:wrong").decode(), FORM, "client_credentials",
         401, "invalid_client"),
        ("Bearer x", FORM, "client_credentials", 401, "invalid_client"),
        (BASIC, "application/json", "client_credentials", 400, "invalid_request"),
        (BASIC, FORM, "password", 400, "unsupported_grant_type"),
        (BASIC, FORM, "refresh_token", 400, "invalid_grant"),
        (BASIC, FORM, "client_credentials", 200, None),
    ],
)  # fmt: skip
def test_the_token_endpoint_wants_the_apps_basic_auth_and_a_form(
    fake: FakeEleme, auth: str, kind: str, grant: str, status: int, error: str | None
) -> None:
    answer = token(fake, {"grant_type": grant}, auth=auth, kind=kind)

    assert answer.status_code == status
    assert answer.json().get("error") == error
    [call] = fake.token_calls
    assert (call.status, call.error, call.client_ok) == (status, error, auth == BASIC)


def test_a_code_is_bound_to_its_app_and_consenting_shop(fake: FakeEleme) -> None:
    mine, theirs = code_of(visit(fake, shop_id="160012345")), code_of(visit(fake))
    form = {"grant_type": "authorization_code", "redirect_uri": CALLBACK}

    wrong_app = token(fake, {**form, "code": mine, "client_id": "another-app"})
    fake.revoke(shop_id=160012345)
    revoked = token(fake, {**form, "code": mine, "client_id": APP_KEY})
    kept = token(fake, {**form, "code": theirs, "client_id": APP_KEY})

    assert (wrong_app.status_code, wrong_app.json()["error"]) == (401, "invalid_client")
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")
    assert kept.status_code == 200
    assert set(kept.json()) == {"access_token", "token_type", "expires_in", "refresh_token"}


def test_the_deauthorization_push_is_signed_with_the_apps_secret(fake: FakeEleme) -> None:
    envelope = json.loads(fake.deauthorization_push(160012345, request_id="42"))
    message = json.loads(envelope["message"])

    assert (envelope["type"], envelope["shopId"], envelope["requestId"]) == (100, 160012345, "42")
    assert set(message) == {"shopId", "appId", "appName", "relieveOAuthTime"}
    assert (message["shopId"], message["appId"]) == (160012345, FIXTURE_SETTINGS["app_id"])
    assert envelope["signature"] == push_signature(envelope, SECRET)

"""Store authorization as an operator and a store's owner meet it: ``waimai-bridge auth``
(url, status, refresh, new-key, rekey), the platform's callback ``GET
/oauth/{platform}/callback`` and the channels API, against the plugins and the fake
platform of :mod:`tests.authorizing`. No token, code or state ever shows in a log record,
an API answer, a page or a command's output (but the link ``auth url`` prints)."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.authorizing import (
    BASE_URL,
    ENGLISH,
    HOUR_S,
    KEY,
    FakePlatform,
    Surfaces,
    assert_no_secret,
    config_text,
    fake_platform,
    query_of,
    surfaces_of,
)
from waimai_bridge.cli import cli
from waimai_bridge.config import KEYS_ENV
from waimai_bridge.sealing import Sealer, SealingUnavailable, check_key
from waimai_bridge.store.database import Database


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with fake_platform() as platform:
        yield platform


@pytest.fixture
def surfaces(
    database: Database, platform: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Surfaces]:
    with surfaces_of(database, platform, tmp_path, monkeypatch) as surfaces:
        yield surfaces


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


# --------------------------------------------------------------------------- the code flow


def test_a_store_authorized_by_its_owner_through_the_link_and_the_callback(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    started = surfaces.run("auth", "url", "--platform", "codepay", "--store", "S001")
    assert started.exit_code == 0, started.output
    assert "log in to Code pay" in started.output
    assert f"{BASE_URL}/oauth/codepay/callback" in started.output
    assert "(15 minutes)" in started.output
    [link] = [line for line in started.output.splitlines() if line.startswith("http")]
    asked = query_of(link)
    assert link.startswith(f"{surfaces.platform.url}/authorize?")
    assert asked["redirect_uri"] == f"{BASE_URL}/oauth/codepay/callback"
    state = asked["state"]
    assert len(state) >= 32

    callback = surfaces.follow(link)
    assert query_of(callback)["state"] == state
    page = surfaces.callback(callback)
    assert page.status_code == 200, page.text
    assert "Store People&#39;s Square is now authorized on Code pay." in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-type"].startswith("text/html")

    status = surfaces.status()
    row = status["S001", "codepay"]
    assert (row["status"], row["scope"], row["failures"], row["problem"]) == (
        "active", "all", 0, None,
    )  # fmt: skip
    assert row["expires_at_ms"] == pytest.approx((time.time() + 24 * HOUR_S) * 1000, abs=60_000)
    assert row["expires_at"][:16] == time.strftime(
        "%Y-%m-%dT%H:%M", time.localtime(row["expires_at_ms"] / 1000)
    )
    assert {key: row["status"] for key, row in status.items()} == {
        ("S001", "codepay"): "active", ("S001", "keypay"): "static",
        ("S001", "testpay"): "static", ("S002", "codepay"): "static",
    }  # fmt: skip
    table = surfaces.run("auth", "status", "--store", "S001")
    assert table.exit_code == 0
    assert "active" in table.output
    assert "static" in table.output
    assert "S002" not in table.output

    channels = surfaces.channels("S001")
    assert channels["codepay"]["authorization"] == {
        "status": "active", "scope": "all", "problem": None,
        "expires_at": channels["codepay"]["authorization"]["expires_at"],
    }  # fmt: skip
    assert channels["codepay"]["authorization"]["expires_at"].endswith("+00:00")
    assert channels["keypay"]["authorization"]["status"] == "static"
    assert (channels["testpay"]["auto_accept"], channels["testpay"]["source"]) == (False, "config")

    token = surfaces.access_token("codepay", "S001")
    replayed = surfaces.callback(callback)
    assert replayed.status_code == 400
    assert "unknown, used already or expired" in replayed.text
    assert surfaces.access_token("codepay", "S001") == token
    assert surfaces.platform.exchanges == 1  # the replay never reached the platform

    forged = surfaces.callback(
        f"/oauth/codepay/callback?code=anything&state={secrets.token_urlsafe(32)}"
    )
    assert forged.status_code == 400
    assert "unknown, used already or expired" in forged.text
    assert surfaces.platform.exchanges == 1
    assert_no_secret(surfaces, logs, state)


def test_the_store_is_the_one_the_state_was_issued_for(surfaces: Surfaces) -> None:
    first = surfaces.link("codepay", "S001")
    second = surfaces.link("codepay", "S002")
    callback = surfaces.follow(first)
    page = surfaces.callback(f"{callback}&store_id=S002&store=S002")
    assert page.status_code == 200
    assert "People&#39;s Square" in page.text
    assert {key: row["status"] for key, row in surfaces.status(platform="codepay").items()} == {
        ("S001", "codepay"): "active", ("S002", "codepay"): "static",
    }  # fmt: skip

    # a state of one platform opens nothing at another's callback
    keypay = surfaces.callback(surfaces.follow(second).replace("/oauth/codepay/", "/oauth/keypay/"))
    assert keypay.status_code == 400
    assert "unknown, used already or expired" in keypay.text
    assert surfaces.status()["S001", "keypay"]["status"] == "static"
    assert surfaces.stored_rows() == 1


def test_a_declined_refused_or_unreachable_authorization_stores_nothing(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    platform = surfaces.platform
    platform.declining = True
    link = surfaces.link("codepay", "S001")
    declined = surfaces.callback(surfaces.follow(link))
    assert declined.status_code == 400
    assert "the store&#39;s owner declined" in declined.text
    platform.declining = False
    # the owner may change their mind: the link was not used up
    assert surfaces.callback(surfaces.follow(link)).status_code == 200
    assert surfaces.stored_rows() == 1

    tampered = surfaces.follow(surfaces.link("codepay", "S002"))
    refused = surfaces.callback(tampered.replace("code=code-", "code=forged-"))
    assert refused.status_code == 400
    assert "Code pay refused the authorization code" in refused.text
    assert surfaces.callback(tampered).status_code == 400  # its state is used up
    assert surfaces.status()["S002", "codepay"]["status"] == "static"

    callback = surfaces.follow(surfaces.link("codepay", "S002"))
    platform.down = True
    unreachable = surfaces.callback(callback)
    assert unreachable.status_code == 502
    assert "Code pay could not be reached" in unreachable.text
    assert surfaces.stored_rows() == 1
    platform.down = False

    for path, status in [
        ("/oauth/nopay/callback?code=c&state=" + "s" * 32, 404),
        ("/oauth/testpay/callback?code=c&state=" + "s" * 32, 404),  # it authorizes nobody
        ("/oauth/codepay/callback?code=c&state=not+a+state", 400),
        ("/oauth/codepay/callback?code=c&state=" + "s" * 129, 400),
        ("/oauth/codepay/callback?code=" + "c" * 4097 + "&state=" + "s" * 32, 400),
        ("/oauth/codepay/callback?code=%00&state=" + "s" * 32, 400),
        ("/oauth/codepay/callback?code=c&code=d&state=" + "s" * 32, 400),
    ]:
        answer = surfaces.callback(path)
        assert (answer.status_code, answer.headers["cache-control"]) == (status, "no-store"), path
    assert surfaces.stored_rows() == 1
    assert_no_secret(surfaces, logs)


def test_the_callback_page_speaks_the_owners_language(surfaces: Surfaces) -> None:
    callback = surfaces.follow(surfaces.link("codepay", "S002"))
    page = surfaces.client.get(callback, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200
    assert "门店「S002」已完成Code pay授权" in page.text
    used = surfaces.client.get(callback, headers={"Accept-Language": "zh-CN"})
    assert "此授权链接无效、已使用或已过期" in used.text


@settings(
    max_examples=150, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    name=st.sampled_from(["codepay", "keypay", "testpay", "nopay"]),
    query=st.lists(
        st.tuples(
            st.sampled_from(["code", "state", "error", "store_id", "x"]),
            st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_-]{16,128}", fullmatch=True),
        ),
        max_size=5,
    ),
)
def test_no_callback_is_a_server_error_or_binds_a_store(
    surfaces: Surfaces, name: str, query: list[tuple[str, str]]
) -> None:
    answer = surfaces.client.get(f"/oauth/{name}/callback", params=query, headers=ENGLISH)
    assert answer.status_code in (400, 404), answer.text
    assert answer.headers["content-type"].startswith("text/html")
    for _, value in query:
        if re.fullmatch(r"[A-Za-z0-9_-]{16,}", value):
            assert value not in answer.text
    assert surfaces.stored_rows() == 0


# --------------------------------------------------------------------------- the commands


def test_an_app_that_needs_no_consent_is_authorized_at_once(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    surfaces.platform.lifetimes["keypay"] = 2 * HOUR_S
    result = surfaces.run("auth", "url", "--platform", "keypay", "--store", "S001")
    assert result.exit_code == 0, result.output
    assert "Store S001 is authorized on keypay now" in result.output
    assert "its access token expires 20" in result.output
    surfaces.outputs.append(result.output)
    assert surfaces.status()["S001", "keypay"]["status"] == "active"
    assert_no_secret(surfaces, logs)


def test_refresh_by_hand_renews_and_a_refusal_makes_the_channel_unauthorized(
    surfaces: Surfaces, logs: pytest.LogCaptureFixture
) -> None:
    assert surfaces.callback(surfaces.follow(surfaces.link("codepay", "S001"))).status_code == 200
    before = surfaces.access_token("codepay", "S001")
    renewed = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert renewed.exit_code == 0, renewed.output
    assert "Renewed store S001's credentials of codepay; its access token expires" in renewed.output
    assert surfaces.access_token("codepay", "S001") != before

    surfaces.platform.down = True
    down = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert (down.exit_code, down.output.strip()) == (
        1, "Error: store S001's credentials of codepay were not renewed: the platform could "
        "not be reached (TransientPlatformError temporarily_unavailable)",
    )  # fmt: skip
    assert surfaces.status()["S001", "codepay"]["status"] == "active"
    surfaces.platform.down = False

    surfaces.platform.refusing_refresh = True
    refused = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert refused.exit_code == 1
    assert "the platform refused (PlatformRejected invalid_grant)" in refused.output
    assert "auth url --platform codepay --store S001" in refused.output
    row = surfaces.status()["S001", "codepay"]
    assert row["status"] == "unauthorized"
    assert "PlatformRejected invalid_grant" in row["problem"]
    authorization = surfaces.channels("S001")["codepay"]["authorization"]
    assert authorization["status"] == "unauthorized"
    assert authorization["problem"] == row["problem"]
    table = surfaces.run("auth", "status")
    assert "unauthorized" in table.output
    again = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001")
    assert again.exit_code == 1
    assert "has no credentials of codepay to renew" in again.output

    surfaces.platform.refusing_refresh = False
    assert surfaces.callback(surfaces.follow(surfaces.link("codepay", "S001"))).status_code == 200
    row = surfaces.status()["S001", "codepay"]
    assert (row["status"], row["problem"]) == ("active", None)
    assert_no_secret(surfaces, logs)


def test_the_commands_say_what_is_missing(surfaces: Surfaces, tmp_path: Path) -> None:
    cases = {
        ("url", "nopay", "S001"): (2, "'nopay' is not a configured platform"),
        ("url", "testpay", "S001"): (2, "the testpay plugin does not authorize stores"),
        ("url", "keypay", "S002"): (2, "store 'S002' is not bound to keypay in the config"),
        ("url", "codepay", "S404"): (2, "store 'S404' is not bound to codepay"),
        ("refresh", "keypay", "S001"): (1, "store 'S001' has no credentials of keypay to renew"),
    }
    for (command, platform, store_id), (code, message) in cases.items():
        result = surfaces.run("auth", command, "--platform", platform, "--store", store_id)
        assert result.exit_code == code, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    surfaces.platform.down = True
    down = surfaces.run("auth", "url", "--platform", "keypay", "--store", "S001")
    assert (down.exit_code, down.output.strip()) == (
        1, "Error: store S001 was not authorized on keypay: the platform could not be reached "
        "(TransientPlatformError temporarily_unavailable)",
    )  # fmt: skip

    keyless = tmp_path / "keyless.toml"
    keyless.write_text(
        config_text(surfaces.bridge.config.bridge.database_url, surfaces.platform.url, keys=""),
        "utf-8",
    )
    for args in (("url", "--platform", "codepay", "--store", "S001"), ("rekey",)):
        result = CliRunner().invoke(cli, ["--config", str(keyless), "auth", *args])
        assert result.exit_code == 2, result.output
        assert "no key to seal credentials with" in result.output
        assert "auth new-key" in result.output


def test_a_key_rotated_with_new_key_and_rekey(surfaces: Surfaces) -> None:
    assert surfaces.run("auth", "url", "--platform", "keypay", "--store", "S001").exit_code == 0
    assert surfaces.callback(surfaces.follow(surfaces.link("codepay", "S001"))).status_code == 200
    made = surfaces.run("auth", "new-key")
    assert made.exit_code == 0
    fresh = made.output.strip()
    check_key(fresh)
    assert fresh != KEY
    token = surfaces.access_token("keypay", "S001")
    with pytest.raises(SealingUnavailable):
        surfaces.access_token("keypay", "S001", Sealer([fresh]))

    both = {KEYS_ENV: f"{fresh},{KEY}"}
    status = surfaces.run("auth", "status", "--json", env=both)
    assert status.exit_code == 0
    rekeyed = surfaces.run("auth", "rekey", env=both)
    assert rekeyed.exit_code == 0, rekeyed.output
    assert rekeyed.output.startswith("Re-sealed the credentials of 2 channels with the first key")
    assert surfaces.access_token("keypay", "S001", Sealer([fresh])) == token
    with pytest.raises(SealingUnavailable):
        surfaces.access_token("keypay", "S001", Sealer([KEY]))

    alone = {KEYS_ENV: fresh}
    renewed = surfaces.run("auth", "refresh", "--platform", "codepay", "--store", "S001", env=alone)
    assert renewed.exit_code == 0, renewed.output
    stale = surfaces.run("auth", "refresh", "--platform", "keypay", "--store", "S001")
    assert stale.exit_code == 2  # the old key alone opens nothing now
    assert "none of the configured keys opens the stored credentials" in stale.output

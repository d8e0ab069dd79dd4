"""The harness's authorization suite passes a plugin that authorizes stores right, by the
code flow or with client credentials, against its fake; and fails each way of getting it
wrong, naming the step and what was expected."""

from __future__ import annotations

import contextlib
import json
import logging
import string
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import authpay
from tests.authpay import AuthPay, fake_platform
from waimai_bridge.cli.processes import QUIET_LOGGERS
from waimai_bridge.harness import Contract, Strictness, authorization, leaks
from waimai_bridge.harness.leaks import MIN_HIDDEN, watching
from waimai_bridge.harness.outcomes import Outcome, Status
from waimai_bridge.pipeline.credentials import CALLBACK_PATH
from waimai_bridge.plugin_api import (
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
    PlatformRejected,
    PluginConfig,
    hookimpl,
)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("authpay-fixtures")
    (folder / "config.json").write_text(json.dumps(authpay.CONFIG), encoding="utf-8")
    return folder


def run(
    plugin: object, fixtures: Path, *, fake: Any = fake_platform,
    strictness: Strictness = Strictness.HIGH,
) -> dict[str, Outcome]:  # fmt: skip
    contract = Contract(authpay.NAME, plugin=plugin, fixtures=fixtures, fake=fake,
                        suites=["authorization"])  # fmt: skip
    assert contract.problem is None
    return {o.case.removeprefix("authorization::"): o for o in contract.run(strictness).outcomes}


def failed(outcomes: dict[str, Outcome]) -> dict[str, str]:
    return {case: o.message for case, o in outcomes.items() if o.status is Status.FAILED}


def test_the_code_flow_passes_every_check(fixtures: Path) -> None:
    outcomes = run(AuthPay(), fixtures)
    assert {case: o.status for case, o in outcomes.items()} == {
        case: Status.PASSED
        for case in ("declared together", "code flow", "codes refused", "refresh", "revoked",
                     "outage", "unreachable")
    }  # fmt: skip


def test_an_app_needing_no_consent_passes_with_client_credentials(tmp_path: Path) -> None:
    granted = {**authpay.CONFIG["settings"], "grant": "client_credentials"}
    config = {**authpay.CONFIG, "settings": granted}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    outcomes = run(AuthPay(), tmp_path)
    assert failed(outcomes) == {}
    assert outcomes["codes refused"].status is Status.SKIPPED
    assert "there is no code to refuse" in outcomes["codes refused"].message
    assert outcomes["revoked"].status is Status.PASSED


def test_a_plugin_without_the_hooks_is_not_applicable(fixtures: Path) -> None:
    class Nothing:
        @hookimpl
        def plugin_manifest(self) -> dict[str, Any]:
            return authpay.MANIFEST | {"capabilities": []}

    outcome = run(Nothing(), fixtures)
    assert list(outcome) == ["(none)"]
    assert outcome["(none)"].status is Status.SKIPPED
    assert outcome["(none)"].message == "not applicable: the plugin authorizes no stores"


# --------------------------------------------------------------------------- broken plugins


class OnlyRefresh:
    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return authpay.MANIFEST | {"capabilities": ["refresh_credentials"]}

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh) -> Credentials:
        return refresh.credentials


def test_refresh_without_the_code_exchange_fails(fixtures: Path) -> None:
    assert failed(run(OnlyRefresh(), fixtures)) == {
        "declared together": "refresh_credentials is declared without authorize_url and "
        "exchange_code: it renews credentials they obtained"
    }


class LogsTheToken(AuthPay):
    def token(self, form: dict[str, str], config: PluginConfig) -> Credentials:
        credentials = super().token(form, config)
        logging.getLogger("tests.authpay").debug("token %s", credentials.access_token)
        return credentials


class LogsTheSecret(AuthPay):
    def token(self, form: dict[str, str], config: PluginConfig) -> Credentials:
        logging.getLogger("tests.authpay").warning("calling with %s", config.settings)
        return super().token(form, config)


class TellsTheRefreshToken(AuthPay):
    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        try:
            return super().refresh_credentials(refresh, config)
        except PlatformRejected:
            raise PlatformRejected(f"{refresh.credentials.refresh_token} refused") from None


def test_a_token_in_a_log_line_or_an_error_fails(fixtures: Path) -> None:
    problems = failed(run(LogsTheToken(), fixtures))
    assert problems["code flow"] == (
        "the code flow: a log line of tests.authpay (DEBUG) shows an access token"
    )
    assert set(problems) == {"code flow", "codes refused", "refresh", "revoked", "outage",
                             "unreachable"}  # fmt: skip
    secret = failed(run(LogsTheSecret(), fixtures))["code flow"]
    assert secret == "the code flow: a log line of tests.authpay (WARNING) shows the secret " \
        "setting 'app_secret'"  # fmt: skip
    assert failed(run(TellsTheRefreshToken(), fixtures)) == {
        "revoked": "revoked: the PlatformRejected raised shows a refresh token"
    }


class AcceptsACodeTwice(AuthPay):
    """Remembers what each code gave and gives it again."""

    def __init__(self) -> None:
        self.given: dict[str, Credentials] = {}

    @hookimpl
    def exchange_code(self, exchange: CodeExchange, config: PluginConfig) -> Credentials:
        if exchange.code in self.given:
            return self.given[exchange.code]
        credentials = super().exchange_code(exchange, config)
        if exchange.code is not None:
            self.given[exchange.code] = credentials
        return credentials


def test_a_code_accepted_twice_fails(fixtures: Path) -> None:
    assert failed(run(AcceptsACodeTwice(), fixtures)) == {
        "codes refused": "codes refused: exchange_code of a code used already: expected "
        "PlatformRejected, gave credentials"
    }


class NeverRefused(AuthPay):
    """Keeps the credentials it has when the platform refuses to renew them."""

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        try:
            return super().refresh_credentials(refresh, config)
        except PlatformRejected:
            return refresh.credentials


def test_a_refresh_that_ignores_a_withdrawn_consent_fails(fixtures: Path) -> None:
    assert failed(run(NeverRefused(), fixtures)) == {
        "revoked": "revoked: refresh_credentials after the store withdrew its consent: "
        "expected PlatformRejected, gave credentials"
    }


class OutageIsARefusal(AuthPay):
    def answer(self, response: httpx.Response) -> Credentials:
        if response.status_code >= 500:
            raise PlatformRejected("the token endpoint failed", code=str(response.status_code))
        return super().answer(response)


class ConnectErrorsEscape(AuthPay):
    def token(self, form: dict[str, str], config: PluginConfig) -> Credentials:
        auth = (str(config.settings["app_key"]), str(config.settings["app_secret"]))
        response = authpay.CLIENT.post(self.base(config) + "token", data=form, auth=auth)
        return self.answer(response)


def test_an_outage_or_an_unreachable_platform_taken_for_a_refusal_fails(fixtures: Path) -> None:
    assert failed(run(OutageIsARefusal(), fixtures)) == {
        "outage": "outage: exchange_code (the token endpoint answers 503): expected "
        "TransientPlatformError, raised PlatformRejected (503)"
    }
    problem = failed(run(ConnectErrorsEscape(), fixtures))
    assert list(problem) == ["unreachable"]
    assert problem["unreachable"].startswith(
        "unreachable: exchange_code (the fake was stopped) raised ConnectError: "
    )


class NoState(AuthPay):
    @hookimpl
    def authorize_url(
        self, request: AuthorizationRequest, config: PluginConfig
    ) -> AuthorizationStart:
        start = super().authorize_url(request, config)
        assert start.url is not None
        return AuthorizationStart(url=start.url.replace(request.state, "").replace("&state=", ""))


def test_an_authorization_url_without_the_state_fails(fixtures: Path) -> None:
    problems = failed(run(NoState(), fixtures))
    assert problems["code flow"] == (
        "the code flow: the authorization page sent the owner to the callback with no state: "
        "the URL authorize_url gives must carry the request's state"
    )


class ExpiryInSeconds(AuthPay):
    def answer(self, response: httpx.Response) -> Credentials:
        credentials = super().answer(response)
        return credentials.model_copy(update={"expires_at_ms": authpay.LIFETIME_SECONDS})


def test_an_expiry_in_the_past_fails(fixtures: Path) -> None:
    problems = failed(run(ExpiryInSeconds(), fixtures))
    assert problems["code flow"] == (
        "the code flow: exchange_code: expires_at_ms: expected a time to come (epoch "
        "milliseconds), actual 86400"
    )


class SameToken(AuthPay):
    """Renews, but hands back the access token it had."""

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        renewed = super().refresh_credentials(refresh, config)
        return renewed.model_copy(update={"access_token": refresh.credentials.access_token})


class OldRefreshToken(AuthPay):
    """Drops the refresh token the platform rotated and keeps the old one."""

    @hookimpl
    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        renewed = super().refresh_credentials(refresh, config)
        return renewed.model_copy(update={"refresh_token": refresh.credentials.refresh_token})


def test_a_renewal_that_is_no_renewal_fails(fixtures: Path) -> None:
    assert failed(run(SameToken(), fixtures))["refresh"] == (
        "refresh: the first refresh_credentials: access_token: expected a new one, actual the "
        "one renewed"
    )
    assert failed(run(OldRefreshToken(), fixtures)) == {
        "refresh": "refresh: the second refresh_credentials: expected credentials, raised "
        "PlatformRejected (invalid_grant)"
    }


# --------------------------------------------------------------------------- broken fakes


def test_an_authorization_page_that_is_not_the_fakes_fails(fixtures: Path) -> None:
    @contextlib.contextmanager
    def unpointed(config: PluginConfig) -> Iterator[authpay.FakeAuthPay]:
        with fake_platform(config) as fake:
            fake.configure = lambda config: config  # type: ignore[method-assign]
            yield fake

    problems = failed(run(AuthPay(), fixtures, fake=unpointed))
    assert problems["code flow"] == (
        "the code flow: the authorization page https://auth.authpay.test/authorize is not the "
        "fake's: configure(config) must point the plugin's authorization page at it"
    )


def test_a_fake_that_cannot_consent_or_revoke_is_missing(fixtures: Path) -> None:
    class Plain:
        """A fake platform without the authorizing fake's methods."""

        def __init__(self, fake: authpay.FakeAuthPay) -> None:
            self.configure, self.script = fake.configure, fake.script
            self.calls, self.reset = fake.calls, fake.reset

    @contextlib.contextmanager
    def plain(config: PluginConfig) -> Iterator[Plain]:
        with fake_platform(config) as fake:
            yield Plain(fake)

    low = run(AuthPay(), fixtures, fake=plain, strictness=Strictness.LOW)
    high = run(AuthPay(), fixtures, fake=plain)
    missing = {"code flow", "codes refused", "refresh", "revoked", "outage", "unreachable"}
    assert {case for case, o in low.items() if o.status is Status.SKIPPED} == missing
    assert set(failed(high)) == missing
    assert high["code flow"].message == (
        "missing (strictness high): the code flow: the fake has no consenting() of an "
        "authorizing fake (see docs/plugin-authors.md, 'The fake platform')"
    )


# --------------------------------------------------------------------------- the watch


TOKENS = st.text(alphabet=string.ascii_letters + string.digits + "-_.~+/=", min_size=8,
                 max_size=60)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    value=TOKENS,
    before=st.text(max_size=20),
    after=st.text(max_size=20),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]),
)
def test_a_hidden_value_is_found_in_the_plugins_lines_and_errors_only(
    value: str, before: str, after: str, level: int
) -> None:
    def elsewhere() -> None:
        logging.getLogger("tests.fake").warning("issued %s", value)

    with watching() as watch:
        watch.hide("an access token", value)
        watch.hide("a short value", value[: MIN_HIDDEN - 1])
        logging.getLogger("tests.plugin").log(level, "%s%s%s", before, value, after)
        logging.getLogger("httpx").info("POST https://x.test/?token=%s", value)  # kept quiet
        thread = threading.Thread(target=elsewhere)  # the fake's thread, not the plugin's
        thread.start()
        thread.join()
        watch.errors.append(PlatformRejected("refused", code=f"E{value}"))
        watch.errors.append(PlatformRejected("refused", code="E1"))
    name = logging.getLevelName(level)
    assert watch.leaks() == [
        f"a log line of tests.plugin ({name}) shows an access token",
        "the PlatformRejected raised shows an access token",
    ]


def test_the_callback_and_the_quiet_loggers_are_the_bridges() -> None:
    assert authorization.CALLBACK_PATH == CALLBACK_PATH
    assert set(leaks.QUIET_LOGGERS) <= set(QUIET_LOGGERS)

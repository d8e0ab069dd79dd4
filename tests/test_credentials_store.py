"""Stores' platform credentials at rest (SQLite and PostgreSQL): sealed with the configured
keys and never stored in the clear, renewed in order of expiry with a backoff, marked
unauthorized and back, re-sealed for a key rotation; authorization link states single-use,
bound to their platform and store, and short-lived."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text

from waimai_bridge.authorization import Credentials
from waimai_bridge.config import KEYS_ENV, load_config
from waimai_bridge.errors import ConfigError
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.sealing import Sealer, SealingUnavailable, new_key
from waimai_bridge.settings import AuthorizationSettings
from waimai_bridge.store import credentials as store
from waimai_bridge.store.credentials import CredentialStatus, StoredCredentials
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import ChannelCredentials

T0 = 1_780_000_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
KEY = new_key()
SEALER = Sealer([KEY])
TOKENS = Credentials(
    access_token="access-token-of-S1-0123456789",
    refresh_token="refresh-token-of-S1-0123456789",
    expires_at_ms=T0 + 24 * HOUR,
    scope="all",
)


def saved(database: Database, platform: str, store_id: str, credentials: Credentials) -> None:
    with database.transaction() as session:
        store.save(session, SEALER, platform, store_id, credentials, now_ms=T0)


def read(
    database: Database, platform: str, store_id: str, now_ms: int = T0
) -> StoredCredentials | None:
    with database.transaction() as session:
        return store.stored(session, SEALER, platform, store_id, now_ms=now_ms, ahead_ms=HOUR)


def status(database: Database, platform: str, store_id: str, now_ms: int = T0) -> str:
    found = read(database, platform, store_id, now_ms)
    assert found is not None
    return found.status


def test_credentials_are_sealed_at_rest_and_read_back(database: Database) -> None:
    saved(database, "testpay", "S1", TOKENS)

    found = read(database, "testpay", "S1")
    assert found is not None
    assert (found.status, found.credentials) == (CredentialStatus.ACTIVE, TOKENS)
    with database.engine.connect() as connection:
        raw = " ".join(
            str(value) for row in connection.execute(text("SELECT * FROM channel_credentials"))
            for value in row
        )  # fmt: skip
    assert TOKENS.access_token not in raw
    assert str(TOKENS.refresh_token) not in raw
    assert read(database, "testpay", "S2") is None
    # another deployment's key opens nothing
    with pytest.raises(SealingUnavailable), database.transaction() as session:
        store.stored(session, Sealer([new_key()]), "testpay", "S1", now_ms=T0, ahead_ms=HOUR)


def test_a_channel_is_expiring_within_the_refresh_window(database: Database) -> None:
    saved(database, "testpay", "S1", TOKENS)
    expires = TOKENS.expires_at_ms
    assert expires is not None
    assert status(database, "testpay", "S1", expires - HOUR - 1) == CredentialStatus.ACTIVE
    assert status(database, "testpay", "S1", expires - HOUR) == CredentialStatus.EXPIRING


def expiring(at_ms: int | None) -> Credentials:
    return TOKENS.model_copy(update={"expires_at_ms": at_ms})


def test_renewals_are_due_soonest_first_and_wait_out_their_backoff(database: Database) -> None:
    saved(database, "testpay", "LATE", expiring(T0 + 50 * MINUTE))
    saved(database, "testpay", "SOON", expiring(T0 + 10 * MINUTE))
    saved(database, "testpay", "FAR", expiring(T0 + 2 * HOUR))
    saved(database, "testpay", "NEVER", expiring(None))
    with database.transaction() as session:
        assert store.due(session, now_ms=T0, ahead_ms=HOUR, limit=10) == [
            ("testpay", "SOON"), ("testpay", "LATE"),
        ]  # fmt: skip
        assert store.due(session, now_ms=T0, ahead_ms=HOUR, limit=1) == [("testpay", "SOON")]
        store.renewal_failed(
            session, "testpay", "SOON", "TransientPlatformError", now_ms=T0, retry_at_ms=T0 + MINUTE
        )
    with database.transaction() as session:
        assert store.due(session, now_ms=T0, ahead_ms=HOUR, limit=10) == [("testpay", "LATE")]
        assert store.due(session, now_ms=T0 + MINUTE, ahead_ms=HOUR, limit=10) == [
            ("testpay", "SOON"), ("testpay", "LATE"),
        ]  # fmt: skip
        row = session.get(ChannelCredentials, ("testpay", "SOON"))
        assert row is not None
        assert (row.failures, row.problem) == (1, "TransientPlatformError")
    saved(database, "testpay", "SOON", TOKENS)  # renewed: the failures are forgotten
    with database.transaction() as session:
        row = session.get(ChannelCredentials, ("testpay", "SOON"))
        assert row is not None
        assert (row.failures, row.retry_at_ms, row.problem) == (0, None, None)


def test_an_unauthorized_channel_is_not_renewed_until_authorized_again(database: Database) -> None:
    saved(database, "testpay", "S1", expiring(T0 + MINUTE))
    with database.transaction() as session:
        assert store.mark_unauthorized(session, "testpay", "S1", "consent withdrawn", now_ms=T0)
        assert not store.mark_unauthorized(session, "testpay", "S9", "no such channel", now_ms=T0)
        assert store.due(session, now_ms=T0, ahead_ms=HOUR, limit=10) == []
    assert status(database, "testpay", "S1") == CredentialStatus.UNAUTHORIZED
    with database.transaction() as session:
        assert store.mark_authorized(session, "testpay", "S1", now_ms=T0 + 1)
    assert status(database, "testpay", "S1") == CredentialStatus.EXPIRING


def test_the_listing_shows_static_channels_and_no_secret(database: Database) -> None:
    saved(database, "testpay", "S2", TOKENS)
    with database.transaction() as session:
        listed = store.listing(
            session, now_ms=T0, ahead_ms=HOUR,
            bound=[("testpay", "S1"), ("testpay", "S2"), ("other", "S2")],
        )  # fmt: skip
        one = store.listing(session, now_ms=T0, ahead_ms=HOUR, bound=[], store_id="S1")
        bound_one = store.listing(
            session, now_ms=T0, ahead_ms=HOUR, bound=[("testpay", "S1"), ("testpay", "S3")],
            store_id="S1",
        )  # fmt: skip
        expiring = store.listing(session, now_ms=T0, ahead_ms=24 * HOUR, store_id="S2")
    assert [(c.store_id, c.platform, c.status) for c in listed] == [
        ("S1", "testpay", CredentialStatus.STATIC),
        ("S2", "other", CredentialStatus.STATIC),
        ("S2", "testpay", CredentialStatus.ACTIVE),
    ]
    assert listed[0] == store.ChannelAuthorization(
        platform="testpay", store_id="S1", status=CredentialStatus.STATIC, expires_at_ms=None,
        scope=None, authorized_at_ms=None, updated_at_ms=None, failures=0, problem=None,
    )  # fmt: skip
    assert listed[2] == store.ChannelAuthorization(
        platform="testpay", store_id="S2", status=CredentialStatus.ACTIVE,
        expires_at_ms=T0 + 24 * HOUR, scope="all", authorized_at_ms=T0, updated_at_ms=T0,
        failures=0, problem=None,
    )  # fmt: skip
    assert one == []
    assert [(c.store_id, c.platform, c.status) for c in bound_one] == [
        ("S1", "testpay", CredentialStatus.STATIC)
    ]
    assert [c.status for c in expiring] == [CredentialStatus.EXPIRING]
    saved(database, "testpay", "S4", TOKENS)
    with database.transaction() as session:
        store.mark_unauthorized(session, "testpay", "S4", "consent withdrawn", now_ms=T0 + 1)
        [refused] = store.listing(session, now_ms=T0, ahead_ms=HOUR, store_id="S4")
    assert (refused.status, refused.problem, refused.updated_at_ms) == (
        CredentialStatus.UNAUTHORIZED, "consent withdrawn", T0 + 1,
    )  # fmt: skip
    assert TOKENS.access_token not in repr(listed)


def test_a_key_rotation_reseals_every_channel(database: Database) -> None:
    saved(database, "testpay", "S1", TOKENS)
    rotated = Sealer([new_key(), KEY])
    with database.transaction() as session:
        assert store.reseal_all(session, rotated) == 1
    with database.transaction() as session:
        row = session.get(ChannelCredentials, ("testpay", "S1"))
        assert row is not None
        with pytest.raises(SealingUnavailable):
            SEALER.unseal(row.access_token)  # the old key alone no longer opens it
        assert rotated.unseal(row.access_token) == TOKENS.access_token
        assert row.refresh_token is not None
        assert rotated.unseal(row.refresh_token) == TOKENS.refresh_token


def test_a_link_state_is_used_once_by_its_platform_within_its_lifetime(
    database: Database,
) -> None:
    with database.transaction() as session:
        state = store.issue_state(session, "testpay", "S1", now_ms=T0)
        old = store.issue_state(session, "testpay", "S2", now_ms=T0 - 20 * MINUTE)
    age = 15 * MINUTE
    with database.transaction() as session:
        assert store.use_state(session, "other", state, now_ms=T0, max_age_ms=age) is None
        assert store.use_state(session, "testpay", "forged" * 4, now_ms=T0, max_age_ms=age) is None
        assert store.use_state(session, "testpay", old, now_ms=T0, max_age_ms=age) is None
        assert store.use_state(session, "testpay", state, now_ms=T0, max_age_ms=age) == "S1"
    with database.transaction() as session:
        assert store.use_state(session, "testpay", state, now_ms=T0, max_age_ms=age) is None
        assert store.forget_states(session, before_ms=T0 - age) == 1
    with database.engine.connect() as connection:
        hashes = connection.execute(text("SELECT state_hash FROM authorization_states")).scalars()
        assert state not in list(hashes), "only a hash of the state is kept"


@given(st.text(min_size=1, max_size=300))
def test_sealing_round_trips_any_text(secret: str) -> None:
    sealed = SEALER.seal(secret)
    assert secret not in sealed or len(secret) < 4
    assert SEALER.unseal(sealed) == secret


def test_sealing_without_a_key_says_how_to_get_one() -> None:
    with pytest.raises(SealingUnavailable, match="WAIMAI_AUTHORIZATION_KEYS"):
        Sealer([]).seal("x")


def test_keys_come_from_the_config_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(f'[authorization]\nkeys = ["{KEY}"]\nrefresh_ahead_minutes = 5\n')
    registry = PluginRegistry()
    config = load_config(path, registry, environ={})
    assert [k.get_secret_value() for k in config.authorization.keys] == [KEY]
    other = new_key()
    config = load_config(path, registry, environ={KEYS_ENV: f"{other}, {KEY}"})
    assert [k.get_secret_value() for k in config.authorization.keys] == [other, KEY]
    path.write_text('[authorization]\nkeys = ["not-a-key"]\n')
    with pytest.raises(ConfigError) as refused:
        load_config(path, registry, environ={})
    assert "authorization.keys" in str(refused.value)
    assert "not-a-key" not in str(refused.value)
    assert AuthorizationSettings().keys == []


def test_no_secret_column_is_ever_written_in_the_clear(database: Database) -> None:
    saved(database, "testpay", "S1", TOKENS.model_copy(update={"refresh_token": None}))
    with database.transaction() as session:
        row = session.execute(select(ChannelCredentials)).scalar_one()
        assert row.refresh_token is None
        assert row.access_token != TOKENS.access_token


def channel(database: Database, platform: str, store_id: str) -> tuple[object, ...]:
    with database.transaction() as session:
        row = session.get(ChannelCredentials, (platform, store_id))
        assert row is not None
        return (row.status, row.failures, row.problem, row.retry_at_ms, row.updated_at_ms)


def test_a_channel_s_marks_touch_that_channel_alone(database: Database) -> None:
    for platform, store_id in (("testpay", "S1"), ("testpay", "S2"), ("other", "S1")):
        saved(database, platform, store_id, TOKENS)
    untouched = channel(database, "other", "S1")
    with database.transaction() as session:
        store.mark_unauthorized(session, "testpay", "S1", "refused", now_ms=T0 + 1)
        store.renewal_failed(session, "testpay", "S2", "outage", now_ms=T0 + 2, retry_at_ms=T0 + 9)
    assert channel(database, "testpay", "S1") == ("unauthorized", 0, "refused", None, T0 + 1)
    assert channel(database, "testpay", "S2") == ("active", 1, "outage", T0 + 9, T0 + 2)
    assert channel(database, "other", "S1") == untouched
    with database.transaction() as session:
        store.renewal_failed(session, "testpay", "S2", "outage", now_ms=T0 + 3, retry_at_ms=T0 + 20)
        assert store.mark_authorized(session, "testpay", "S1", now_ms=T0 + 4)
    assert channel(database, "testpay", "S2") == ("active", 2, "outage", T0 + 20, T0 + 3)
    assert channel(database, "testpay", "S1") == ("active", 0, None, None, T0 + 4)
    assert channel(database, "other", "S1") == untouched


def test_renewals_and_link_states_at_their_exact_bounds(database: Database) -> None:
    saved(database, "testpay", "EDGE", expiring(T0 + HOUR))
    with database.transaction() as session:
        assert store.due(session, now_ms=T0, ahead_ms=HOUR, limit=5) == [("testpay", "EDGE")]
        assert store.due(session, now_ms=T0 - 1, ahead_ms=HOUR, limit=5) == []
        store.issue_state(session, "testpay", "S1", now_ms=T0)
        assert store.forget_states(session, before_ms=T0) == 0, "issued at the bound: kept"
        assert store.forget_states(session, before_ms=T0 + 1) == 1


def test_authorizing_again_dates_the_consent_anew_and_a_renewal_keeps_its_date(
    database: Database,
) -> None:
    saved(database, "testpay", "S1", TOKENS)

    def dates() -> tuple[int | None, int | None]:
        with database.transaction() as session:
            [channel] = store.listing(session, now_ms=T0, ahead_ms=HOUR, store_id="S1")
        return channel.authorized_at_ms, channel.updated_at_ms

    with database.transaction() as session:
        store.save(session, SEALER, "testpay", "S1", TOKENS, now_ms=T0 + 1)
    assert dates() == (T0 + 1, T0 + 1)
    with database.transaction() as session:
        store.save(session, SEALER, "testpay", "S1", TOKENS, now_ms=T0 + 2, renewed=True)
    assert dates() == (T0 + 1, T0 + 2)

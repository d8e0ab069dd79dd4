"""The service fixtures talk to real SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, make_url, text

from tests.conftest import (
    CLAIM_SECONDS,
    CLAIMABLE_REDIS_DBS,
    REDIS_SERVER_URL,
    ClaimTaken,
    RedisClaim,
    claim_key,
)

REDIS_KEY = "waimai:test_services:probe"


# --- SQLite -----------------------------------------------------------------


def test_sqlite_url_is_a_file_in_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    assert sqlite_url.startswith("sqlite:///")
    database = make_url(sqlite_url).database
    assert database is not None
    assert Path(database).parent == tmp_path


def test_sqlite_rows_written_by_one_engine_are_read_by_another(sqlite_url: str) -> None:
    writer = create_engine(sqlite_url)
    try:
        with writer.begin() as conn:
            conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, platform TEXT)"))
            conn.execute(
                text("INSERT INTO orders (id, platform) VALUES (:id, :platform)"),
                [{"id": 1, "platform": "eleme"}, {"id": 2, "platform": "meituan"}],
            )
    finally:
        writer.dispose()

    database = make_url(sqlite_url).database
    assert database is not None
    assert Path(database).is_file()

    reader = create_engine(sqlite_url)
    try:
        with reader.connect() as conn:
            rows = conn.execute(text("SELECT id, platform FROM orders ORDER BY id")).all()
    finally:
        reader.dispose()
    assert [tuple(row) for row in rows] == [(1, "eleme"), (2, "meituan")]


# --- PostgreSQL -------------------------------------------------------------


def test_postgres_database_is_a_fresh_waimai_test_database(postgres_url: str) -> None:
    name = make_url(postgres_url).database
    assert name is not None
    assert name.startswith("waimai_test_")
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version()")).scalar_one()
            current = conn.execute(text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert str(version).startswith("PostgreSQL ")
    assert current == name


def test_postgres_create_insert_select(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("CREATE TABLE probe_orders (id serial PRIMARY KEY, total_cents integer)")
            )
            conn.execute(
                text("INSERT INTO probe_orders (total_cents) VALUES (:cents)"),
                [{"cents": 1250}, {"cents": 399}],
            )
        with engine.connect() as conn:
            totals = conn.execute(
                text("SELECT total_cents FROM probe_orders ORDER BY id")
            ).scalars()
            assert list(totals) == [1250, 399]
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE probe_orders"))
    finally:
        engine.dispose()


def test_postgres_database_is_separate_from_test(postgres_url: str) -> None:
    table = "probe_separate_from_test"
    own = create_engine(postgres_url)
    other = create_engine(make_url(postgres_url).set(database="test"))
    try:
        with own.begin() as conn:
            conn.execute(text(f"CREATE TABLE {table} (id integer)"))
        lookup = text("SELECT to_regclass(:name) IS NOT NULL")
        with own.connect() as conn:
            assert conn.execute(lookup, {"name": table}).scalar_one() is True
        with other.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar_one() == "test"
            assert conn.execute(lookup, {"name": table}).scalar_one() is False
        with own.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))
    finally:
        own.dispose()
        other.dispose()


# --- Redis ------------------------------------------------------------------


def test_redis_url_is_the_given_one_or_a_db_claimed_for_this_run(redis_url: str) -> None:
    given = os.environ.get("WAIMAI_TEST_REDIS_URL")
    server, _, db = redis_url.rpartition("/")
    if given:
        assert redis_url == given
    else:
        assert server == REDIS_SERVER_URL
        assert int(db) in CLAIMABLE_REDIS_DBS
    claims = redis.Redis.from_url(f"{server}/0")
    try:
        assert claims.exists(claim_key(int(db))) == 1
        assert 0 < claims.ttl(claim_key(int(db))) <= CLAIM_SECONDS
    finally:
        claims.close()


def test_two_runs_at_once_claim_different_dbs_and_give_them_back() -> None:
    claims = redis.Redis.from_url(f"{REDIS_SERVER_URL}/0")
    try:
        first, second = RedisClaim(claims), RedisClaim(claims)
        try:
            assert first.db != second.db
            assert {first.db, second.db} <= set(CLAIMABLE_REDIS_DBS)
        finally:
            first.release()
            second.release()
        assert claims.exists(claim_key(first.db), claim_key(second.db)) == 0
    finally:
        claims.close()


def test_a_db_another_run_holds_cannot_be_claimed() -> None:
    claims = redis.Redis.from_url(f"{REDIS_SERVER_URL}/0")
    try:
        first = RedisClaim(claims)
        try:
            with pytest.raises(ClaimTaken):
                RedisClaim(claims, first.db)
            assert claims.get(claim_key(first.db)) == first.token.encode()
        finally:
            first.release()
        again = RedisClaim(claims, first.db)  # free again
        again.release()
    finally:
        claims.close()


def test_a_claim_taken_over_after_it_expired_is_left_to_its_new_holder() -> None:
    claims = redis.Redis.from_url(f"{REDIS_SERVER_URL}/0", decode_responses=True)
    try:
        claim = RedisClaim(claims)
        key = claim_key(claim.db)
        try:
            claims.set(key, "another run", ex=60)  # as if it had expired and been claimed
            claim.refresh()
            claim.release()
            assert claims.get(key) == "another run"
            assert claims.ttl(key) <= 60
        finally:
            claims.delete(key)
    finally:
        claims.close()


def test_redis_set_get_in_its_own_db(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert client.dbsize() == 0
        assert client.set(REDIS_KEY, "42") is True
        assert client.get(REDIS_KEY) == "42"
        assert client.client_info()["db"] == int(redis_url.rpartition("/")[2])
    finally:
        client.close()


def test_redis_fixture_flushes_keys_left_before_it(request: pytest.FixtureRequest) -> None:
    # Leave a stale key in the run's db first, then set the fixture up: it must be gone.
    url, _ = request.getfixturevalue("_redis_db")
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.set(REDIS_KEY, "stale")
        assert client.exists(REDIS_KEY) == 1
        assert request.getfixturevalue("redis_url") == url
        assert client.exists(REDIS_KEY) == 0
    finally:
        client.close()

"""Signed pushes holding values the database cannot hold, over real HTTP into a running
``waimai-bridge serve`` on SQLite and on PostgreSQL, next to normal orders of the same
store: each is answered 400 with a JSON body naming the value, nothing of it reaches the
inbox, and the normal orders are applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from waimai_bridge_meituan.testing import FIXTURE_APP_ID, FIXTURE_PUBLIC_BASE_URL, FIXTURE_SECRET
from waimai_bridge_own_pos.testing import FIXTURE_SETTINGS

from tests.processes import running_serve, wait_until
from tests.test_hostile_pushes import (
    ELEME_APP_ID,
    ELEME_SECRET,
    ELEME_SHOP,
    HOSTILE,
    NORMAL,
    Push,
)
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import InboxEvent

CONFIG = f"""
[bridge]
database_url = "{{url}}"
public_base_url = "{FIXTURE_PUBLIC_BASE_URL}"
accept_hold_seconds = 1
api_tokens = ["hostile-e2e-token"]

[platforms.eleme]
app_key = "e2e-app-key"
app_secret = "{ELEME_SECRET}"
app_id = {ELEME_APP_ID}

[platforms.meituan]
app_id = {FIXTURE_APP_ID}
app_secret = "{FIXTURE_SECRET}"

[platforms.own_pos]
secret = "{FIXTURE_SETTINGS["secret"]}"

[stores.S001]
name = "Store 1"
eleme = {{ shop_id = {ELEME_SHOP}, token = "shop-token" }}
meituan = {{ app_poi_code = "STORE-001" }}
own_pos = {{ pos_store_code = "POS-001" }}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """A running embedded ``serve`` on a fresh database of each kind, and that database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hostile.sqlite3'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    database = Database(url)
    database.migrate()
    try:
        with running_serve(tmp_path, CONFIG.replace("{url}", url)) as base:
            yield base, database
    finally:
        database.dispose()


def send(base: str, push: Push) -> httpx.Response:
    path = f"/webhooks/{push.platform}" + (f"/{push.kind}" if push.kind else "")
    headers = {"content-type": "application/x-www-form-urlencoded"} if push.kind else {}
    return httpx.post(base + path, content=push.body, headers={**headers, **push.headers},
                      timeout=30)  # fmt: skip


def inbox(database: Database) -> dict[tuple[str, str], str]:
    with database.transaction() as session:
        rows = session.execute(
            select(InboxEvent.platform, InboxEvent.platform_order_id, InboxEvent.status)
        )
        return {(platform, order): status for platform, order, status in rows}


def test_hostile_pushes_are_refused_beside_normal_orders(served: tuple[str, Database]) -> None:
    base, database = served
    for case, (build, words) in sorted(HOSTILE.items()):
        if words is None:  # read, not refused
            continue
        answer = send(base, build())
        assert answer.status_code == 400, (case, answer.text)
        assert answer.headers["content-type"].startswith("application/json"), case
        assert answer.json(), case
        assert words in answer.text, (case, answer.text)
    normal = {platform: build() for platform, build in NORMAL.items()}
    for push in normal.values():
        answer = send(base, push)
        assert answer.status_code == 200, answer.text

    expected = {("eleme", "E-1"), ("meituan", "27061900338318741"), ("own_pos", "P-1")}
    assert set(inbox(database)) == expected  # nothing of a refused push was written
    wait_until(lambda: set(inbox(database).values()) == {"done"}, 30, "the normal orders applied")

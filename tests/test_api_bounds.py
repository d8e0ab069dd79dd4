"""Values the database cannot hold are refused at the API, on SQLite and PostgreSQL: a
clear 4xx naming what is wrong, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.test_pipeline import AUTH, config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database
from waimai_bridge.web.app import create_app

HUGE = "9" * 40


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(database.url), "utf-8")
    plugins = registry()
    with TestClient(create_app(Bridge(load_config(path, plugins), plugins))) as client:
        yield client


OUT_OF_RANGE_IDS = [
    ("GET", f"/api/v1/orders/{HUGE}"),
    ("GET", f"/api/v1/orders/{2**63}"),
    ("DELETE", f"/api/v1/subscriptions/{HUGE}"),
]
BAD_FILTERS = [
    ({"since": "\u00b2"}, "since"),
    ({"since": HUGE}, "since"),
    ({"cursor": HUGE}, "cursor"),
]


def test_ids_and_filters_out_of_the_databases_range_are_refused(client: TestClient) -> None:
    for method, path in OUT_OF_RANGE_IDS:
        answer = client.request(method, path, headers=AUTH)
        assert answer.status_code == 422, (path, answer.text)
        assert "less than or equal to" in answer.text
    for params, name in BAD_FILTERS:
        answer = client.get("/api/v1/orders", params=params, headers=AUTH)
        assert 400 <= answer.status_code < 500, (params, answer.text)
        assert name in answer.text
    assert client.get(f"/api/v1/orders/{2**63 - 1}", headers=AUTH).status_code == 404

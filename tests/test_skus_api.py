"""The SKU mapping over real HTTP (SPEC §6, §7.3): ``GET/PUT /api/v1/skus`` on a running
``waimai-bridge serve``, on SQLite and PostgreSQL; hostile bodies refused with a 4xx that
names the problem and nothing written; and the product each order line was mapped to,
shown in the order's ``price``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests import testpay
from tests.conftest import clear
from tests.processes import plugin_site, running_serve, wait_until
from tests.sample_plugin import PRICE
from tests.test_pipeline import AUTH, SECRET, T0, config_text
from waimai_bridge.store.database import Database
from waimai_bridge.web.skus import MAX_BODY_BYTES

CSV = {"content-type": "text/csv", **AUTH}
JSON = {"content-type": "application/json", **AUTH}
SEEDED = {"platform": "eleme", "sku_code": "SEED-1", "product_id": "P-SEED"}


@dataclass(frozen=True)
class Served:
    """A running bridge: an HTTP client on it and its database."""

    client: httpx.Client
    database: Database

    def put(self, content: bytes | str, headers: dict[str, str] = CSV) -> httpx.Response:
        data = content.encode() if isinstance(content, str) else content
        return self.client.put("/api/v1/skus", content=data, headers=headers)

    def mappings(self, **filters: Any) -> list[dict[str, Any]]:
        """Every mapping matching the filters, read page by page."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {**filters, **({"cursor": cursor} if cursor else {})}
            answer = self.client.get("/api/v1/skus", params=params, headers=AUTH)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            found += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return found


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def _served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"skus-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'bridge.sqlite3'}"
        database = Database(url)
        database.migrate()
    else:
        url = request.getfixturevalue("postgres_url")
        database = request.getfixturevalue("_migrated_postgres")
    plugin_site(folder)
    with (
        running_serve(folder, config_text(url)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        yield Served(client, database)


@pytest.fixture
def served(_served: Served) -> Served:
    clear(_served.database)
    return _served


def pairs(mappings: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(m["platform"], m["sku_code"], m["product_id"]) for m in mappings]


def test_put_imports_csv_and_json_and_get_pages_and_filters(served: Served) -> None:
    csv = "platform,sku_code,product_id\nmeituan,M-2,P-2\neleme,E-1,P-1\n\nmeituan,M-1,P-1\n"
    answer = served.put(csv)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"imported": 3, "added": 3, "changed": 0, "unchanged": 0}
    items = [
        {"platform": "meituan", "sku_code": "M-1", "product_id": "P-9"},  # replaced
        {"platform": "meituan", "sku_code": "M-2", "product_id": "P-2"},  # as it was
        {"platform": "testpay", "sku_code": "T-1", "product_id": "P-1"},  # new
        {"platform": "testpay", "sku_code": "t-1 ", "product_id": " P-3"},  # trimmed, distinct
    ]
    answer = served.client.put("/api/v1/skus", json={"items": items}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"imported": 4, "added": 2, "changed": 1, "unchanged": 1}
    expected = [
        ("eleme", "E-1", "P-1"), ("meituan", "M-1", "P-9"), ("meituan", "M-2", "P-2"),
        ("testpay", "T-1", "P-1"), ("testpay", "t-1", "P-3"),
    ]  # fmt: skip
    first = served.client.get("/api/v1/skus", params={"limit": 2}, headers=AUTH).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"] is not None
    assert set(first["items"][0]) == {"platform", "sku_code", "product_id", "updated_at"}
    assert sorted(pairs(served.mappings(limit=2))) == sorted(expected)
    assert pairs(served.mappings(limit=1)) == pairs(served.mappings())
    assert len(pairs(served.mappings(limit=1))) == 5
    assert pairs(served.mappings(platform="meituan")) == [expected[1], expected[2]]
    assert sorted(pairs(served.mappings(product_id="P-1"))) == [expected[0], expected[3]]
    assert pairs(served.mappings(platform="testpay", sku_code="T-1")) == [expected[3]]
    assert served.mappings(sku_code="nowhere") == []
    empty = served.put("platform,sku_code,product_id\n")
    assert empty.json() == {"imported": 0, "added": 0, "changed": 0, "unchanged": 0}


TOO_LONG = "x" * 300
BAD_CSV = (
    "platform,sku_code,product_id\n"
    "eleme,OK-1,P-1\n"
    f"eleme,{TOO_LONG},P-2\n"
    "nowhere,OK-2,P-3\n"
    "eleme,,P-4\n"
    "eleme,OK-1,P-5\n"
    "eleme,OK-3\n"
    "eleme,NUL\x00,P-6\n"
)
BAD_CSV_PROBLEMS = [
    {"line": 3, "problem": "sku_code is longer than 128 characters"},
    {"line": 4, "problem": "unknown platform 'nowhere' (known: eleme, meituan, own_pos, testpay)"},
    {"line": 5, "problem": "sku_code is empty"},
    {"line": 6, "problem": "eleme SKU 'OK-1' is already mapped on line 2"},
    {"line": 7, "problem": "expected 3 fields (platform,sku_code,product_id), found 2"},
    {"line": 8, "problem": "sku_code holds a control character or a lone surrogate"},
]
BAD_ITEMS = [
    {"platform": "eleme", "sku_code": "OK-1", "product_id": "P-1"},
    ["eleme", "OK-2", "P-2"],
    {"platform": "eleme", "sku_code": "OK-3"},
    {"platform": "eleme", "sku_code": 7, "product_id": "P-4"},
    {"platform": "eleme", "sku_code": TOO_LONG, "product_id": "P-5"},
    {"platform": "eleme", "sku_code": "OK-1", "product_id": "P-6"},
    {"platform": "eleme", "sku_code": "OK-6", "product_id": "P-6", "extra": 1},
]
OBJECT = "must be an object with exactly platform, sku_code, product_id"
BAD_ITEMS_PROBLEMS = [
    {"item": 1, "problem": OBJECT},
    {"item": 2, "problem": OBJECT},
    {"item": 3, "problem": "platform, sku_code, product_id must be strings"},
    {"item": 4, "problem": "sku_code is longer than 128 characters"},
    {"item": 5, "problem": "eleme SKU 'OK-1' is already mapped on item 0"},
    {"item": 6, "problem": OBJECT},
]
SHAPE = "the body must be"
HOSTILE: dict[str, tuple[dict[str, str], bytes, int, str, list[dict[str, Any]] | None]] = {
    "bad csv lines": (CSV, BAD_CSV.encode(), 422, "nothing imported: 6 bad lines",
                      BAD_CSV_PROBLEMS),
    "bad csv header": (CSV, b"platform,sku,product\neleme,OK-1,P-1\n", 422,
                       "nothing imported: 1 bad line",
                       [{"line": 1, "problem": "the header must be platform,sku_code,product_id"}]),
    "csv not utf-8": (CSV, "platform,sku_code,product_id\neleme,OK-1,P-1\neleme,菜,P\n"
                      .encode("gb18030"), 422, "nothing imported: 1 bad line",
                      [{"line": 3, "problem": "the file is not UTF-8 text"}]),
    "csv not csv": (CSV, b'platform,sku_code,product_id\neleme,"OK-1,P-1\n' + b"x" * 200_000,
                    422, "nothing imported", None),
    "bad json items": (JSON, json.dumps({"items": BAD_ITEMS}).encode(), 422,
                       "nothing imported: 6 bad items", BAD_ITEMS_PROBLEMS),
    "lone surrogate": (JSON, b'{"items": [{"platform": "eleme", "sku_code": "\\ud800",'
                       b' "product_id": "P"}]}', 422, "nothing imported: 1 bad item",
                       [{"item": 0, "problem":
                         "sku_code holds a control character or a lone surrogate"}]),
    "json not utf-8": (JSON, '{"items": ["菜"]}'.encode("gb18030"), 400, "not UTF-8", None),
    "not json": (JSON, b'{"items": [', 400, "not JSON", None),
    "json too deep": (JSON, b"[" * 100_000 + b"]" * 100_000, 400, "not JSON", None),
    "json a list": (JSON, json.dumps(BAD_ITEMS[:1]).encode(), 422, SHAPE, None),
    "json items not a list": (JSON, b'{"items": {"platform": "eleme"}}', 422, SHAPE, None),
    "json extra keys": (JSON, b'{"items": [], "mode": "replace"}', 422, SHAPE, None),
    "other media type": ({"content-type": "application/xml", **AUTH}, b"<skus/>", 415,
                         "text/csv or application/json", None),
    "no media type": (AUTH, b"platform,sku_code,product_id\n", 415, "text/csv", None),
    "latin-1": ({"content-type": "text/csv; charset=latin-1", **AUTH},
                b"platform,sku_code,product_id\n", 415, "UTF-8", None),
    "too large": (CSV, b"platform,sku_code,product_id\n" + b"eleme,A,B\n" * (MAX_BODY_BYTES // 10),
                  413, f"larger than {MAX_BODY_BYTES} bytes", None),
    "no token": ({"content-type": "text/csv"}, b"platform,sku_code,product_id\neleme,A,B\n",
                 401, "Bearer", None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_bad_put_is_refused_with_what_is_wrong_and_writes_nothing(
    served: Served, case: str
) -> None:
    assert served.put("platform,sku_code,product_id\neleme,SEED-1,P-SEED\n").status_code == 200
    before = served.mappings()
    headers, body, status, error, problems = HOSTILE[case]
    answer = served.put(body, headers)
    assert answer.status_code == status, answer.text
    assert error in answer.json()["error"]
    if problems is not None:
        assert answer.json()["problems"] == problems
        assert answer.json()["problem_count"] == len(problems)
    assert served.mappings() == before == [{**SEEDED, "updated_at": before[0]["updated_at"]}]


def test_a_large_body_without_a_length_is_refused_while_it_streams(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"platform,sku_code,product_id\n"
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"eleme,A,B\n" * 6554

    answer = served.client.put("/api/v1/skus", content=chunks(), headers=CSV)
    assert answer.status_code == 413, answer.text
    assert "larger than" in answer.json()["error"]
    assert served.mappings() == []


def test_a_problem_list_is_bounded_but_counted(served: Served) -> None:
    body = "platform,sku_code,product_id\n" + "nowhere,A,B\n" * 5000
    answer = served.put(body)
    assert answer.status_code == 422
    assert answer.json()["problem_count"] == 5000
    assert len(answer.json()["problems"]) == 1000
    assert answer.json()["problems"][-1]["line"] == 1001


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"cursor": "not-a-cursor"}, "cursor is not a next_cursor"),
        ({"cursor": "W10"}, "cursor is not a next_cursor"),  # base64 of []
        ({"cursor": "é"}, "cursor is not a next_cursor"),
        ({"sku_code": "A\x00"}, "sku_code holds a"),
        ({"product_id": TOO_LONG}, "product_id is longer than 128 characters"),
    ],
)
def test_get_refuses_what_cannot_be_a_cursor_or_a_code(
    served: Served, params: dict[str, str], problem: str
) -> None:
    answer = served.client.get("/api/v1/skus", params=params, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert problem in answer.json()["error"]


def test_get_wants_a_bearer_token(served: Served) -> None:
    answer = served.client.get("/api/v1/skus")
    assert answer.status_code == 401
    assert "Bearer" in answer.json()["error"]


def push(served: Served, order: str, code: str, n: int, **extra: Any) -> None:
    body = testpay.push(f"{order}:{n}", order, code, T0 + n * 1000, **extra)
    headers = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
    answer = served.client.post("/webhooks/testpay", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def test_price_lines_show_the_product_mapped_when_the_order_was_stored(served: Served) -> None:
    mapped = served.put("platform,sku_code,product_id\ntestpay,SKU-1,P-RICE\n")
    assert mapped.status_code == 200
    unmapped_line = {**PRICE["items"][0], "sku_code": "SKU-NEW", "name": "soup", "quantity": 1}
    price = {**PRICE, "items": [*PRICE["items"], unmapped_line]}
    push(served, "T-1", "order.created", 0, price=price)
    push(served, "T-1", "order.accepted", 1)

    def stored() -> dict[str, Any] | None:
        page = served.client.get(
            "/api/v1/orders", params={"platform_order_id": "T-1"}, headers=AUTH
        ).json()
        return page["items"][0] if page["items"] else None

    order = wait_until(stored, 20, "order T-1 stored")
    assert [item["product_id"] for item in order["price"]["items"]] == ["P-RICE", None]
    assert [item["product_id"] for item in order["items"]] == ["P-RICE", None]
    # a later mapping changes what new orders get, not what this one was stored with
    served.put("platform,sku_code,product_id\ntestpay,SKU-1,P-RICE-2\ntestpay,SKU-NEW,P-SOUP\n")
    detail = served.client.get(f"/api/v1/orders/{order['id']}", headers=AUTH).json()
    assert [item["product_id"] for item in detail["price"]["items"]] == ["P-RICE", None]
    assert {k: v for k, v in detail["price"].items() if k != "items"} == {
        k: v for k, v in price.items() if k != "items"
    }

"""Template orders for the preload: a few order lifecycles through the real bridge, in
process, on a scratch PostgreSQL database, and every row they left in the tables an order
touches, as PostgreSQL's COPY text.

Each :data:`KINDS` entry is one lifecycle of pushes of the ``testpay`` plugin
(``tests/testpay.py``) a minute apart, on a clock of the bridge's own, so that the rows hold
the times a real order's do. The accept hold is 0: the order is stored as it is accepted.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

from bench.load import LIFECYCLES, PRICE
from tests import testpay
from waimai_bridge.config import load_config
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.skus import SkuRow, import_skus
from waimai_bridge.web.app import create_app

SECRET = "preload-secret"
STEP_MS = 60_000
"""Between two pushes of a lifecycle."""
NULL = r"\N"
"""COPY text's null."""

ORDER_TABLES = (
    "orders", "platform_orders", "order_items", "order_events", "anomalies", "changes", "inbox",
)  # fmt: skip
"""The tables an order leaves rows in, parents first."""
OTHER_TABLES = frozenset({"alembic_version", "sku_mappings", "leases"})
"""Tables the templates' run may write that hold nothing of an order."""

_UNMAPPED_PRICE = {
    **PRICE,
    "items": [PRICE["items"][0], {**PRICE["items"][1], "sku_code": "SKU-9999"}],
}
_PARTIAL = {"partial": True, "refund_fen": 800}


@dataclass(frozen=True)
class Kind:
    """A lifecycle: its pushes' codes (with extra fields, if any); ``in_progress``: the
    order is not finished at its end."""

    name: str
    codes: tuple[tuple[str, dict[str, Any]], ...]
    in_progress: bool = False
    price: dict[str, Any] = field(default_factory=lambda: PRICE)


def _codes(*codes: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((code, {}) for code in codes)


DELIVERED, REFUNDED, REFUND_REJECTED, CANCELLED = (_codes(*codes) for codes in LIFECYCLES)
KINDS: tuple[Kind, ...] = (
    Kind("completed", DELIVERED),
    Kind("refunded", REFUNDED),
    Kind("refund_rejected", REFUND_REJECTED),
    Kind("cancelled", CANCELLED),
    Kind("partially_refunded", (*DELIVERED, ("refund.requested", _PARTIAL),
                                ("refund.agreed", _PARTIAL))),
    Kind("unmapped_sku", DELIVERED, price=_UNMAPPED_PRICE),
    Kind("accepted", DELIVERED[:2], in_progress=True),
    Kind("preparing", DELIVERED[:3], in_progress=True),
    Kind("rider_at_store", DELIVERED[:4], in_progress=True),
    Kind("delivering", DELIVERED[:5], in_progress=True),
    Kind("refund_requested", REFUND_REJECTED[:4], in_progress=True),
)  # fmt: skip
"""The templates' lifecycles: finished ones (completed, refunded after completion, a refund
rejected, cancelled, partly refunded, one with an item the SKU mapping lacks) and ones still
in progress."""


@dataclass(frozen=True)
class Template:
    """One order's rows: per table, each row's fields as COPY text, in ``columns`` order."""

    kind: Kind
    created_at_ms: int
    rows: dict[str, list[list[str]]]


@dataclass(frozen=True)
class Templates:
    """The templates and the columns of each table they were read with."""

    columns: dict[str, list[str]]
    orders: list[Template]

    def of(self, kind: str) -> Template:
        """The template of a kind."""
        return next(template for template in self.orders if template.kind.name == kind)


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg connects to it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A database of its own on ``url``'s server, dropped after the block."""
    name = f"waimai_preload_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Clock:
    """The bridge's clock in the templates' run: moved on by hand."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _config(folder: Path, url: str) -> Path:
    path = folder / "templates.toml"
    path.write_text(
        f"""
[bridge]
database_url = "{url}"
broker_url = ""
accept_hold_seconds = 0

[anomalies]
interval_seconds = 0

[retention]
interval_minutes = 0

[platforms.testpay]
secret = "{SECRET}"

[stores.S000]
testpay = {{ shop = "100000" }}
""",
        encoding="utf-8",
    )
    return path


def _settled(connection: psycopg.Connection[Any]) -> bool:
    """Every pushed event applied and every accepted order stored."""
    pending = connection.execute(
        "SELECT (SELECT count(*) FROM inbox WHERE status = 'pending') + (SELECT count(*) FROM"
        " platform_orders WHERE order_id IS NULL AND NOT discarded"
        " AND hold_started_at_ms IS NOT NULL)"
    ).fetchone()
    return pending is not None and pending[0] == 0


def _run_lifecycles(url: str, start_ms: int) -> None:
    """Push every kind's lifecycle through the bridge in process, a step a minute."""
    from fastapi.testclient import TestClient  # imported here: it warns about httpx when imported

    registry = PluginRegistry.discover(blocked=())
    registry.add(testpay.NAME, testpay)
    with tempfile.TemporaryDirectory(prefix="waimai-preload-") as folder:
        config = load_config(_config(Path(folder), url), registry)
    clock = _Clock(start_ms)
    bridge = Bridge(config, registry, clock=clock)
    bridge.database.migrate()
    with bridge.database.transaction() as session:
        rows = [SkuRow(testpay.NAME, item["sku_code"], f"P-{item['sku_code']}")
                for item in PRICE["items"]]  # fmt: skip
        for _ in import_skus(session, rows, now_ms=start_ms):
            pass
    with (
        TestClient(create_app(bridge)) as client,
        psycopg.connect(libpq_url(url), autocommit=True) as connection,
    ):
        for step in range(max(len(kind.codes) for kind in KINDS)):
            clock.now_ms = start_ms + step * STEP_MS
            for number, kind in enumerate(KINDS):
                if step >= len(kind.codes):
                    continue
                code, extra = kind.codes[step]
                if code == "order.created":
                    extra = {**extra, "price": kind.price, "day_seq": number + 1, "remark": "少辣"}
                body = testpay.push(
                    f"T{number}:{step}", f"T{number}", code, clock.now_ms - 2000,
                    shop="100000", **extra,
                )  # fmt: skip
                headers = {testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)}
                answer = client.post("/webhooks/testpay", content=body, headers=headers)
                if answer.status_code != 200:
                    raise RuntimeError(f"the templates' push answered {answer.status_code}")
            deadline = time.monotonic() + 60
            while not _settled(connection):
                if time.monotonic() > deadline:
                    raise RuntimeError("the templates' events were not applied within 60 s")
                time.sleep(0.02)


def _copied(connection: psycopg.Connection[Any], table: str, columns: list[str]) -> list[list[str]]:
    """Every row of a table, by id, as COPY text fields."""
    listed = ", ".join(f'"{column}"' for column in columns)
    data = bytearray()
    with connection.cursor().copy(
        f'COPY (SELECT {listed} FROM "{table}" ORDER BY id) TO STDOUT'
    ) as copy:
        for chunk in copy:
            data += chunk
    return [line.split("\t") for line in data.decode().split("\n") if line]


def columns_of(connection: psycopg.Connection[Any], table: str) -> list[str]:
    """A table's columns, in their order."""
    rows = connection.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [row[0] for row in rows]


def _read(url: str) -> Templates:
    """The templates' rows, grouped by order."""
    with psycopg.connect(libpq_url(url)) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE'"
        )]  # fmt: skip
        for table in sorted(set(tables) - set(ORDER_TABLES) - OTHER_TABLES):
            found = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            if found and found[0]:
                raise RuntimeError(
                    f"the templates left rows in {table}, which the preload does not copy: "
                    "teach bench/templates.py how they belong to an order"
                )
        columns = {table: columns_of(connection, table) for table in ORDER_TABLES}
        rows = {table: _copied(connection, table, columns[table]) for table in ORDER_TABLES}

    def field(table: str, row: list[str], column: str) -> str:
        return row[columns[table].index(column)]

    order_of: dict[str, str] = {}  # orders.id → platform order id
    pk_of: dict[str, str] = {}  # platform_orders.id → platform order id
    for row in rows["orders"]:
        order_of[field("orders", row, "id")] = field("orders", row, "platform_order_id")
    for row in rows["platform_orders"]:
        pk_of[field("platform_orders", row, "id")] = field(
            "platform_orders", row, "platform_order_id"
        )
    grouped: dict[str, dict[str, list[list[str]]]] = {}
    for table in ORDER_TABLES:
        for row in rows[table]:
            if "platform_order_id" in columns[table]:
                owner = field(table, row, "platform_order_id")
            elif "platform_order_pk" in columns[table]:
                owner = pk_of[field(table, row, "platform_order_pk")]
            else:
                owner = order_of[field(table, row, "order_id")]
            grouped.setdefault(owner, {name: [] for name in ORDER_TABLES})[table].append(row)
    templates = []
    for number, kind in enumerate(KINDS):
        order_rows = grouped.get(f"T{number}")
        if order_rows is None or len(order_rows["orders"]) != 1:
            raise RuntimeError(f"the template {kind.name} was not stored as one order")
        created = int(field("orders", order_rows["orders"][0], "created_at_ms"))
        templates.append(Template(kind, created, order_rows))
    return Templates(columns, templates)


def make_templates(url: str, *, start_ms: int) -> Templates:
    """Run :data:`KINDS` through the bridge on a scratch database on ``url``'s server,
    the first push at ``start_ms``, and read their rows."""
    with scratch_database(url) as scratch:
        _run_lifecycles(scratch, start_ms)
        return _read(scratch)

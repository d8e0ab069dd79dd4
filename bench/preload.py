"""A bridge's PostgreSQL database filled fast with many orders, as a chain's is after weeks
of trade, for the benchmarks at scale (``bench/run.py --preload-orders``, ``bench/read.py``).

The rows are the real bridge's: the template orders of :mod:`bench.templates` (one per
lifecycle) are copied over and over with ``COPY``, each copy with new ids, a platform order
id and idempotency keys of its own, a store and a platform, and its times moved to when it
happened. The columns are the tables' own, read from the database, so the loader follows
the migrations.

- **States**: most orders completed, some refunded (in full or in part), cancelled or with a
  refund rejected, a few with an item the SKU mapping lacks, and a small share still in
  progress (:data:`MIX`), so that the state filter has selective values and unselective
  ones.
- **Times**: finished orders spread evenly over the past ``days``; orders in progress within
  the last :data:`RECENT_MINUTES`, as a running chain's are (the anomaly rules' thresholds
  are longer).
- **Retention**: what the ``[retention]`` defaults would have purged is not there: inbox rows
  and the order board's feed only for the orders young enough, event payloads emptied for
  the older ones.

Afterwards every id sequence is past the loaded ids, and the tables are vacuumed and
analyzed, as autovacuum keeps a deployment's. Progress goes to stderr.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.templates import (
    NULL,
    ORDER_TABLES,
    Template,
    Templates,
    columns_of,
    libpq_url,
    make_templates,
)
from tests import testpay
from waimai_bridge.pipeline.shards import shard_of
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.settings import RetentionSettings

MIX: tuple[tuple[str, float], ...] = (
    ("completed", 0.745), ("refund_rejected", 0.05), ("refunded", 0.05),
    ("partially_refunded", 0.03), ("cancelled", 0.07), ("unmapped_sku", 0.005),
    ("accepted", 0.01), ("preparing", 0.01), ("rider_at_store", 0.01), ("delivering", 0.015),
    ("refund_requested", 0.005),
)  # fmt: skip
"""Each template kind's share of the loaded orders."""
RECENT_MINUTES = 10
DAY_MS = 86_400_000
CHUNK = 25_000
"""Orders per transaction."""
PROGRESS_EVERY = 100_000
WRITE_BYTES = 1 << 20
"""COPY data sent at a time."""

EPOCH_MS_AFTER = 10**12
"""A ``*_ms`` value above this is a moment (2001 on), moved with the order; below, a length."""

_ID, _ORDER, _PO, _PLATFORM, _POID, _STORE, _SHARD, _KEY, _TIME, _PAYLOAD = range(10)
_Set = tuple[int, int, int]
"""A field each copy of a row sets: its index, what it holds (``_ID`` …), and an argument
(a time's offset from the order's creation, a key's number)."""


@dataclass(frozen=True)
class Loaded:
    """What a preload put in: ``orders`` orders with ids ``first_order_id`` to
    ``last_order_id`` (some between may be missing), in ``seconds``."""

    orders: int
    first_order_id: int
    last_order_id: int
    seconds: float


@dataclass(frozen=True)
class _Row:
    """A template row: its fixed fields, and the ones each copy sets (index, what, arg)."""

    parts: list[str]
    sets: list[_Set]


@dataclass(frozen=True)
class _Plan:
    """The orders to load, oldest first: a template index, a creation time, a store and a
    platform each."""

    kinds: list[int]
    created: list[int]
    stores: list[int]
    platforms: list[int]


def _keys(template: Template, columns: dict[str, list[str]]) -> list[str]:
    """The template's idempotency keys, in one order for every table that holds them."""
    found: set[str] = set()
    for table, rows in template.rows.items():
        if "idempotency_key" in columns[table]:
            index = columns[table].index("idempotency_key")
            found.update(row[index] for row in rows)
    return sorted(found)


def _compile(
    template: Template, table: str, columns: list[str], wanted: list[str], keys: list[str]
) -> list[_Row]:
    """The template's rows of a table as :class:`_Row`, with the columns ``wanted``."""
    rows = []
    for row in template.rows[table]:
        fields = dict(zip(columns, row, strict=True))
        parts: list[str] = []
        sets: list[_Set] = []
        for index, column in enumerate(wanted):
            value = fields[column]
            parts.append(value)
            if column == "id":
                sets.append((index, _ID, 0))
            elif column == "order_id" and value != NULL:
                sets.append((index, _ORDER, 0))
            elif column == "platform_order_pk":
                sets.append((index, _PO, 0))
            elif column == "platform":
                sets.append((index, _PLATFORM, 0))
            elif column == "platform_order_id":
                sets.append((index, _POID, 0))
            elif column == "store_id":
                sets.append((index, _STORE, 0))
            elif column == "shard":
                sets.append((index, _SHARD, 0))
            elif column == "idempotency_key":
                sets.append((index, _KEY, keys.index(value)))
            elif column.endswith("_ms") and value != NULL and int(value) > EPOCH_MS_AFTER:
                sets.append((index, _TIME, int(value) - template.created_at_ms))
            elif column in ("payload", "latest_payload"):
                sets.append((index, _PAYLOAD, 0))
        rows.append(_Row(parts, sets))
    return rows


def _plan(
    templates: Templates, spans_ms: list[int], orders: int, *, stores: int, platforms: int,
    days: float, now_ms: int, seed: int,
) -> _Plan:  # fmt: skip
    """Which template each order copies, when it was created, its store and platform."""
    generator = random.Random(seed)
    names = [template.kind.name for template in templates.orders]
    kinds = generator.choices(
        [names.index(name) for name, _ in MIX], [share for _, share in MIX], k=orders
    )
    recent_ms = RECENT_MINUTES * 60_000
    created = []
    for kind in kinds:
        template = templates.orders[kind]
        latest = now_ms - spans_ms[kind] - 1000
        earliest = now_ms - recent_ms if template.kind.in_progress else now_ms - int(days * DAY_MS)
        if not template.kind.in_progress:
            latest -= recent_ms
        created.append(generator.randint(earliest, max(earliest, latest)))
    order = sorted(range(orders), key=created.__getitem__)
    return _Plan(
        kinds=[kinds[index] for index in order],
        created=[created[index] for index in order],
        stores=[generator.randrange(stores) for _ in range(orders)],
        platforms=[generator.randrange(platforms) for _ in range(orders)],
    )


def _spans_ms(makers: dict[str, list[list[_Row]]]) -> list[int]:
    """Per template, how long after the order's creation its latest time is."""
    spans = [0] * len(makers["orders"])
    for rows_of in makers.values():
        for kind, rows in enumerate(rows_of):
            for row in rows:
                for _, what, offset in row.sets:
                    if what == _TIME:
                        spans[kind] = max(spans[kind], offset)
    return spans


class _Cutoffs:
    """Which rows of an order created at a time the retention defaults keep."""

    def __init__(self, now_ms: int) -> None:
        defaults = RetentionSettings()
        self.inbox = self._cutoff(now_ms, defaults.inbox_days)
        self.changes = self._cutoff(now_ms, defaults.changes_days)
        self.payloads = self._cutoff(now_ms, defaults.payloads_days)

    @staticmethod
    def _cutoff(now_ms: int, days: float) -> int:
        return now_ms - int(days * DAY_MS) if days > 0 else 0

    def keeps(self, table: str, created_ms: int) -> bool:
        """Whether the order's rows of ``table`` are still there."""
        if table == "inbox":
            return created_ms >= self.inbox
        if table == "changes":
            return created_ms >= self.changes
        return True


def _reserve(connection: psycopg.Connection[Any], table: str, count: int) -> int:
    """The first of ``count`` ids of ``table`` no one else takes: its sequence moved past
    them while no insert into the table runs."""
    with connection.transaction():
        connection.execute(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE')
        sequence = _one(connection, "SELECT pg_get_serial_sequence(%s, 'id')", (table,))
        used = max(
            _one(connection, f"SELECT last_value - (NOT is_called)::int FROM {sequence}"),
            _one(connection, f'SELECT coalesce(max(id), 0) FROM "{table}"'),
        )
        connection.execute("SELECT setval(%s, %s)", (sequence, used + count))
    return int(used) + 1


def _one(connection: psycopg.Connection[Any], query: str, parameters: Any = None) -> Any:
    """The one value a query answers."""
    found = connection.execute(query, parameters).fetchone()
    assert found is not None
    return found[0]


def _lines(
    rows_of: Callable[[int], list[_Row]], plan: _Plan, span: range, first: dict[str, int],
    next_id: list[int], names: tuple[list[str], list[str], list[int]], cutoffs: _Cutoffs,
    table: str,
) -> Iterator[str]:  # fmt: skip
    """The COPY lines of ``table`` of the orders ``span`` of the plan; ``next_id`` holds the
    table's next id, moved on as rows take ids."""
    platforms, stores, shards = names
    for number in span:
        created = plan.created[number]
        if not cutoffs.keeps(table, created):
            continue
        order_id = str(first["orders"] + number)
        poid = f"L{order_id}"
        store = plan.stores[number]
        old_payload = created < cutoffs.payloads
        for row in rows_of(plan.kinds[number]):
            fields = row.parts.copy()
            for index, what, arg in row.sets:
                if what == _TIME:
                    fields[index] = str(created + arg)
                elif what == _ID:
                    fields[index] = str(next_id[0])
                    next_id[0] += 1
                elif what == _ORDER:
                    fields[index] = order_id
                elif what == _PO:
                    fields[index] = str(first["platform_orders"] + number)
                elif what == _PLATFORM:
                    fields[index] = platforms[plan.platforms[number]]
                elif what == _POID:
                    fields[index] = poid
                elif what == _STORE:
                    fields[index] = stores[store]
                elif what == _SHARD:
                    fields[index] = str(shards[store])
                elif what == _KEY:
                    fields[index] = f"{poid}:{arg}"
                elif what == _PAYLOAD and old_payload:
                    fields[index] = "{}"
            yield "\t".join(fields)


def _copy(
    connection: psycopg.Connection[Any], table: str, columns: list[str], lines: Iterator[str]
) -> None:
    """COPY the lines into the table, a megabyte at a time."""
    listed = ", ".join(f'"{column}"' for column in columns)
    with connection.cursor().copy(f'COPY "{table}" ({listed}) FROM STDIN') as copy:
        batch: list[str] = []
        size = 0
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= WRITE_BYTES:
                copy.write("\n".join(batch) + "\n")
                batch, size = [], 0
        if batch:
            copy.write("\n".join(batch) + "\n")


def log(message: str) -> None:
    """A line of progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def installed_platforms() -> list[str]:
    """The platforms the loaded orders are spread over: the installed plugins' and the
    traffic's ``testpay``."""
    return sorted({testpay.NAME, *PluginRegistry.discover(blocked=()).platforms})


def preload(
    url: str,
    orders: int,
    *,
    stores: Sequence[str],
    platforms: Sequence[str],
    shards: int,
    days: float = 30,
    seed: int = 1,
    templates: Templates | None = None,
    progress: Callable[[str], None] = log,
) -> Loaded:
    """Load ``orders`` orders into the migrated bridge database at ``url`` (a SQLAlchemy
    PostgreSQL URL), over ``stores`` and ``platforms``, inbox rows in the shards of a
    config of ``shards``; rows already there stay. ``templates``: made on a scratch
    database of the same server when not given."""
    started = time.perf_counter()
    now_ms = time.time_ns() // 1_000_000
    if templates is None:
        templates = make_templates(url, start_ms=now_ms - DAY_MS)
    cutoffs = _Cutoffs(now_ms)
    names = (list(platforms), list(stores), [shard_of(store, shards) for store in stores])
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        wanted = {table: columns_of(connection, table) for table in ORDER_TABLES}
        makers = _makers(templates, wanted)
        plan = _plan(templates, _spans_ms(makers), orders, stores=len(stores),
                     platforms=len(platforms), days=days, now_ms=now_ms, seed=seed)  # fmt: skip
        counts = dict.fromkeys(ORDER_TABLES, 0)
        for kind, created in zip(plan.kinds, plan.created, strict=True):
            for table in ORDER_TABLES:
                if cutoffs.keeps(table, created):
                    counts[table] += len(makers[table][kind])
        first = {table: _reserve(connection, table, counts[table]) for table in ORDER_TABLES}
        parallel = _without_triggers(connection)

    def load(tables: Sequence[str], report: bool) -> None:
        next_ids = {table: [first[table]] for table in tables}
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            if parallel:
                _without_triggers(connection)
            for start in range(0, orders, CHUNK):
                span = range(start, min(orders, start + CHUNK))
                with connection.transaction():
                    for table in tables:
                        lines = _lines(makers[table].__getitem__, plan, span, first,
                                       next_ids[table], names, cutoffs, table)  # fmt: skip
                        _copy(connection, table, wanted[table], lines)
                if report and (span.stop % PROGRESS_EVERY < CHUNK or span.stop == orders):
                    progress(f"preload: {span.stop:,} of {orders:,} orders "
                             f"({time.perf_counter() - started:.0f} s)")  # fmt: skip

    # the event log is half the rows: alone on a connection of its own when the tables'
    # foreign keys may be left unchecked (their rows then need not be committed first)
    groups = [["order_events"], [t for t in ORDER_TABLES if t != "order_events"]]
    if not parallel:
        groups = [list(ORDER_TABLES)]
    with ThreadPoolExecutor(len(groups)) as pool:
        for done in [pool.submit(load, tables, index == 0) for index, tables in enumerate(groups)]:
            done.result()
    _vacuumed(url)
    return Loaded(orders, first["orders"], first["orders"] + orders - 1,
                  time.perf_counter() - started)  # fmt: skip


def _makers(templates: Templates, wanted: dict[str, list[str]]) -> dict[str, list[list[_Row]]]:
    """Per table, each template's rows compiled for the table's columns ``wanted``."""
    makers: dict[str, list[list[_Row]]] = {}
    for table in ORDER_TABLES:
        missing = set(wanted[table]) - set(templates.columns[table])
        if missing:
            raise RuntimeError(f"{table} has columns the templates lack: {sorted(missing)}")
        makers[table] = [
            _compile(template, table, templates.columns[table], wanted[table],
                     _keys(template, templates.columns))
            for template in templates.orders
        ]  # fmt: skip
    for table in ("orders", "platform_orders"):
        if any(len(rows) != 1 for rows in makers[table]):
            raise RuntimeError(f"a template order has other than one row in {table}")
    return makers


def _without_triggers(connection: psycopg.Connection[Any]) -> bool:
    """Skip the foreign-key checks on this connection, if the role may (whether it may):
    every row the loader writes refers to one it writes too."""
    try:
        connection.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def _vacuumed(url: str) -> None:
    """VACUUM and ANALYZE the loaded tables, as autovacuum would have."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        for table in ORDER_TABLES:
            connection.execute(f'VACUUM (ANALYZE) "{table}"')

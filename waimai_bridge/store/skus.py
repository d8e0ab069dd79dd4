"""The SKU mapping (SPEC §6): platform item codes → the chain's own product ids.

A batch of mappings — a CSV file (``waimai-bridge skus import``, ``PUT /api/v1/skus`` with
``text/csv``) or a JSON list (``PUT /api/v1/skus``) — is validated whole before anything
is written, by the one check here: every bad line is reported with its number (the CSV
line, or the list index) and problem, and a batch with any bad line writes nothing.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from waimai_bridge.errors import WaimaiBridgeError
from waimai_bridge.store.tables import SkuMapping

HEADER = ("platform", "sku_code", "product_id")
MAX_LENGTH = 128
BATCH = 500
SHOWN_PROBLEMS = 50


@dataclass(frozen=True)
class SkuRow:
    """One mapping: ``sku_code`` on ``platform`` is the chain's ``product_id``."""

    platform: str
    sku_code: str
    product_id: str


class SkuFileError(WaimaiBridgeError):
    """A batch of mappings with bad lines; ``problems`` holds ``(number, problem)``, the
    number being a CSV line (``unit`` ``"line"``) or a JSON list index (``"item"``)."""

    def __init__(self, source: str, problems: list[tuple[int, str]], unit: str = "line") -> None:
        self.problems = problems
        self.unit = unit
        shown = problems[:SHOWN_PROBLEMS]
        lines = "\n".join(f"  {unit} {number}: {problem}" for number, problem in shown)
        more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{source}: nothing imported, {self.summary}:\n{lines}{more}")

    @property
    def summary(self) -> str:
        """``1 bad line``, ``3 bad items`` …"""
        count = len(self.problems)
        return f"{count} bad {self.unit}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class ImportSummary:
    """How an import changed the mapping."""

    added: int
    changed: int
    unchanged: int


def decode_sku_csv(data: bytes, *, source: str = "input") -> str:
    """A mapping CSV's bytes as text, or :class:`SkuFileError` naming the line of the
    first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SkuFileError(source, [(line, "the file is not UTF-8 text")]) from None


def read_sku_csv(text: str, *, platforms: Collection[str], source: str = "input") -> list[SkuRow]:
    """The rows of a mapping CSV, or :class:`SkuFileError` naming every bad line."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        header = next(reader, None)
        if header is None or tuple(cell.strip() for cell in header) != HEADER:
            raise SkuFileError(source, [(1, f"the header must be {','.join(HEADER)}")])
        numbered = [(reader.line_num, cells) for cells in reader]
    except csv.Error as exc:
        raise SkuFileError(source, [(reader.line_num, f"not CSV: {exc}")]) from None
    return _checked(
        [(number, cells) for number, cells in numbered if any(cell.strip() for cell in cells)],
        platforms, source, "line",
    )  # fmt: skip


def read_sku_items(
    items: Sequence[object], *, platforms: Collection[str], source: str = "input"
) -> list[SkuRow]:
    """The rows of a JSON list of ``{"platform", "sku_code", "product_id"}`` objects, or
    :class:`SkuFileError` naming every bad item by its index."""
    numbered: list[tuple[int, Sequence[str] | str]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != set(HEADER):
            numbered.append((index, f"must be an object with exactly {', '.join(HEADER)}"))
        elif not all(isinstance(item[name], str) for name in HEADER):
            numbered.append((index, f"{', '.join(HEADER)} must be strings"))
        else:
            numbered.append((index, [item[name] for name in HEADER]))
    return _checked(numbered, platforms, source, "item")


def _checked(
    numbered: Iterable[tuple[int, Sequence[str] | str]],
    platforms: Collection[str],
    source: str,
    unit: str,
) -> list[SkuRow]:
    """The rows of numbered lines (cells, or already a problem), each checked alone and
    against the lines before it; :class:`SkuFileError` if any is bad."""
    rows: list[SkuRow] = []
    problems: list[tuple[int, str]] = []
    first_seen: dict[tuple[str, str], int] = {}
    for number, cells in numbered:
        problem = cells if isinstance(cells, str) else _line_problem(cells, platforms)
        if problem is not None:
            problems.append((number, problem))
            continue
        row = SkuRow(*(cell.strip() for cell in cells))
        key = (row.platform, row.sku_code)
        if key in first_seen:
            repeated = f"{row.platform} SKU {row.sku_code!r} is already mapped on {unit}"
            problems.append((number, f"{repeated} {first_seen[key]}"))
            continue
        first_seen[key] = number
        rows.append(row)
    if problems:
        raise SkuFileError(source, problems, unit)
    return rows


def _line_problem(cells: Sequence[str], platforms: Collection[str]) -> str | None:
    if len(cells) != len(HEADER):
        return f"expected {len(HEADER)} fields ({','.join(HEADER)}), found {len(cells)}"
    values = dict(zip(HEADER, (cell.strip() for cell in cells), strict=True))
    for name, value in values.items():
        if not value:
            return f"{name} is empty"
        problem = text_problem(value)
        if problem is not None:
            return f"{name} {problem}"
    if values["platform"] not in platforms:
        known = ", ".join(sorted(platforms)) or "none"
        return f"unknown platform {values['platform']!r} (known: {known})"
    return None


def text_problem(value: str) -> str | None:
    """What keeps ``value`` from being a platform, SKU code or product id, or None."""
    if len(value) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        return "holds a control character or a lone surrogate"
    return None


def import_skus(
    session: Session, rows: Sequence[SkuRow], *, now_ms: int
) -> Iterator[ImportSummary]:
    """Write the mappings in batches, yielding the running summary after each batch."""
    added = changed = unchanged = 0
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        existing = {
            (mapping.platform, mapping.sku_code): mapping
            for mapping in session.execute(
                select(SkuMapping).where(
                    SkuMapping.platform.in_({row.platform for row in batch}),
                    SkuMapping.sku_code.in_({row.sku_code for row in batch}),
                )
            ).scalars()
        }
        for row in batch:
            mapping = existing.get((row.platform, row.sku_code))
            if mapping is None:
                session.add(SkuMapping(**vars(row), updated_at_ms=now_ms))
                added += 1
            elif mapping.product_id != row.product_id:
                mapping.product_id = row.product_id
                mapping.updated_at_ms = now_ms
                changed += 1
            else:
                unchanged += 1
        session.flush()
        yield ImportSummary(added, changed, unchanged)


def list_skus(
    session: Session,
    *,
    platform: str | None = None,
    sku_code: str | None = None,
    product_id: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int,
) -> tuple[list[SkuMapping], bool]:
    """Up to ``limit`` mappings matching the filters given, by platform and SKU code, from
    after the ``(platform, sku_code)`` ``after``; and whether more follow."""
    statement = select(SkuMapping)
    filters = (
        (SkuMapping.platform, platform),
        (SkuMapping.sku_code, sku_code),
        (SkuMapping.product_id, product_id),
    )
    for column, value in filters:
        if value is not None:
            statement = statement.where(column == value)
    if after is not None:
        statement = statement.where(
            or_(
                SkuMapping.platform > after[0],
                and_(SkuMapping.platform == after[0], SkuMapping.sku_code > after[1]),
            )
        )
    statement = statement.order_by(SkuMapping.platform, SkuMapping.sku_code).limit(limit + 1)
    rows = list(session.execute(statement).scalars())
    return rows[:limit], len(rows) > limit


def product_ids(session: Session, platform: str, sku_codes: Iterable[str]) -> dict[str, str]:
    """The product of each of these SKU codes that the mapping knows."""
    codes = sorted(set(sku_codes))
    if not codes:
        return {}
    found = session.connection().execute(_PRODUCTS, {"platform": platform, "codes": codes})
    return {code: product for code, product in found}


_PRODUCTS = select(SkuMapping.sku_code, SkuMapping.product_id).where(
    SkuMapping.platform == bindparam("platform"),
    SkuMapping.sku_code.in_(bindparam("codes", expanding=True)),
)

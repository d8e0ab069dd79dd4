"""The SKU mapping (SPEC §6): platform item codes → the chain's own product ids.

A CSV import is validated whole before anything is written: every bad line is reported
with its number and problem, and a file with any bad line writes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from waimai_bridge.errors import WaimaiBridgeError
from waimai_bridge.store.tables import SkuMapping

HEADER = ("platform", "sku_code", "product_id")
MAX_LENGTH = 128
BATCH = 500


@dataclass(frozen=True)
class SkuRow:
    """One mapping: ``sku_code`` on ``platform`` is the chain's ``product_id``."""

    platform: str
    sku_code: str
    product_id: str


class SkuFileError(WaimaiBridgeError):
    """A SKU mapping file with bad lines; ``problems`` holds ``(line number, problem)``."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        shown = problems[:50]
        lines = "\n".join(f"  line {number}: {problem}" for number, problem in shown)
        more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{source}: nothing imported, {len(problems)} bad lines:\n{lines}{more}")
        self.problems = problems


@dataclass(frozen=True)
class ImportSummary:
    """How an import changed the mapping."""

    added: int
    changed: int
    unchanged: int


def read_sku_csv(text: str, *, platforms: Collection[str], source: str = "input") -> list[SkuRow]:
    """The rows of a mapping CSV, or :class:`SkuFileError` naming every bad line."""
    rows: list[SkuRow] = []
    problems: list[tuple[int, str]] = []
    first_seen: dict[tuple[str, str], int] = {}
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None or tuple(cell.strip() for cell in header) != HEADER:
        raise SkuFileError(source, [(1, f"the header must be {','.join(HEADER)}")])
    for cells in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        problem = _line_problem(cells, platforms)
        if problem is not None:
            problems.append((number, problem))
            continue
        row = SkuRow(*(cell.strip() for cell in cells))
        key = (row.platform, row.sku_code)
        if key in first_seen:
            repeated = f"{row.platform} SKU {row.sku_code!r} is already mapped on line"
            problems.append((number, f"{repeated} {first_seen[key]}"))
            continue
        first_seen[key] = number
        rows.append(row)
    if problems:
        raise SkuFileError(source, problems)
    return rows


def _line_problem(cells: list[str], platforms: Collection[str]) -> str | None:
    if len(cells) != len(HEADER):
        return f"expected {len(HEADER)} fields ({','.join(HEADER)}), found {len(cells)}"
    values = dict(zip(HEADER, (cell.strip() for cell in cells), strict=True))
    for name, value in values.items():
        if not value:
            return f"{name} is empty"
        if len(value) > MAX_LENGTH:
            return f"{name} is longer than {MAX_LENGTH} characters"
    if values["platform"] not in platforms:
        known = ", ".join(sorted(platforms)) or "none"
        return f"unknown platform {values['platform']!r} (known: {known})"
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

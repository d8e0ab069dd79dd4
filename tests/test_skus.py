"""The SKU mapping: CSV import (all or nothing), lookup, and the CLI around them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url

from waimai_bridge.cli import cli
from waimai_bridge.store.database import Database, head_revision
from waimai_bridge.store.skus import SkuFileError, SkuRow, import_skus, product_ids, read_sku_csv

PLATFORMS = ("eleme", "meituan", "own_pos")


def test_a_good_file_is_read() -> None:
    text = "\ufeffplatform,sku_code,product_id\n eleme , SKU-1 , P-1 \n\nmeituan,SKU-1,P-2\n"
    assert read_sku_csv(text, platforms=PLATFORMS) == [
        SkuRow("eleme", "SKU-1", "P-1"),
        SkuRow("meituan", "SKU-1", "P-2"),
    ]


def test_every_bad_line_is_named() -> None:
    text = (
        "platform,sku_code,product_id\n"
        "eleme,SKU-1,P-1\n"
        "eleme,,P-1\n"
        "jd,SKU-2,P-2\n"
        "eleme,SKU-1,P-3\n"
        "meituan,SKU-3\n"
        f"meituan,{'x' * 129},P-4\n"
        '"meituan","SKU,4",P-5\n'
    )
    with pytest.raises(SkuFileError) as caught:
        read_sku_csv(text, platforms=PLATFORMS, source="skus.csv")
    assert caught.value.problems == [
        (3, "sku_code is empty"),
        (4, "unknown platform 'jd' (known: eleme, meituan, own_pos)"),
        (5, "eleme SKU 'SKU-1' is already mapped on line 2"),
        (6, "expected 3 fields (platform,sku_code,product_id), found 2"),
        (7, "sku_code is longer than 128 characters"),
    ]
    assert str(caught.value).startswith("skus.csv: nothing imported, 5 bad lines:\n  line 3: ")


@pytest.mark.parametrize("header", ["", "platform,sku,product\n", "sku_code,platform,product_id\n"])
def test_the_header_is_required(header: str) -> None:
    with pytest.raises(SkuFileError) as caught:
        read_sku_csv(header + "eleme,SKU-1,P-1\n", platforms=PLATFORMS)
    assert caught.value.problems == [(1, "the header must be platform,sku_code,product_id")]


def test_import_adds_changes_and_counts(database: Database) -> None:
    rows = [SkuRow("eleme", f"SKU-{n}", f"P-{n}") for n in range(1200)]
    with database.transaction() as session:
        summaries = list(import_skus(session, rows, now_ms=1))
    assert len(summaries) == 3  # batches of 500: progress is reported per batch
    assert summaries[-1].added == 1200
    changed = [SkuRow("eleme", "SKU-7", "P-new"), SkuRow("eleme", "SKU-8", "P-8")]
    with database.transaction() as session:
        [summary] = import_skus(session, changed, now_ms=2)
        assert (summary.added, summary.changed, summary.unchanged) == (0, 1, 1)
        assert product_ids(session, "eleme", ["SKU-7", "SKU-8", "SKU-X"]) == {
            "SKU-7": "P-new",
            "SKU-8": "P-8",
        }
        assert product_ids(session, "meituan", ["SKU-7"]) == {}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WAIMAI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.delenv("WAIMAI_CONFIG", raising=False)
    return CliRunner()


def test_the_cli_imports_and_looks_up(run: CliRunner, tmp_path: Path) -> None:
    csv = tmp_path / "skus.csv"
    csv.write_text("platform,sku_code,product_id\neleme,SKU-1,P-1\nmeituan,M-1,P-1\n", "utf-8")
    imported = run.invoke(cli, ["skus", "import", str(csv)])
    assert imported.exit_code == 0, imported.output
    assert f"imported 2 SKU mappings from {csv}: 2 added, 0 changed, 0 unchanged" in imported.output
    found = run.invoke(cli, ["skus", "lookup", "eleme", "SKU-1"])
    assert (found.exit_code, found.output) == (0, "eleme\tSKU-1\tP-1\n")
    missing = run.invoke(cli, ["skus", "lookup", "eleme", "SKU-1", "SKU-9"])
    assert missing.exit_code == 1
    assert "eleme\tSKU-9\t(unmapped)" in missing.output


def test_the_cli_imports_nothing_from_a_file_with_a_bad_line(
    run: CliRunner, tmp_path: Path
) -> None:
    csv = tmp_path / "skus.csv"
    csv.write_text("platform,sku_code,product_id\neleme,SKU-1,P-1\nnowhere,X,P-2\n", "utf-8")
    result = run.invoke(cli, ["skus", "import", str(csv)])
    assert result.exit_code == 1
    assert "line 3: unknown platform 'nowhere'" in result.output
    lookup = run.invoke(cli, ["skus", "lookup", "eleme", "SKU-1"])
    assert "(unmapped)" in lookup.output


def test_the_cli_names_the_line_of_a_file_that_is_not_utf8_or_not_csv(
    run: CliRunner, tmp_path: Path
) -> None:
    legacy = tmp_path / "gbk.csv"
    legacy.write_bytes("platform,sku_code,product_id\neleme,A,P\neleme,菜,P\n".encode("gb18030"))
    result = run.invoke(cli, ["skus", "import", str(legacy)])
    assert result.exit_code == 1
    assert "nothing imported, 1 bad line:\n  line 3: the file is not UTF-8 text" in result.output
    unclosed = tmp_path / "quote.csv"
    unclosed.write_text('platform,sku_code,product_id\neleme,"A,P\n' + "x" * 200_000, "utf-8")
    result = run.invoke(cli, ["skus", "import", str(unclosed)])
    assert result.exit_code == 1
    assert "line 3: not CSV: field larger than field limit" in result.output
    lookup = run.invoke(cli, ["skus", "lookup", "eleme", "A"])
    assert "(unmapped)" in lookup.output


def test_migrate_upgrades_an_empty_database_to_head(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # trust authentication ignores the password; the output must not show it
    with_password = make_url(empty_postgres_url).set(password="hunter2")
    monkeypatch.setenv("WAIMAI_DATABASE_URL", with_password.render_as_string(hide_password=False))
    monkeypatch.delenv("WAIMAI_CONFIG", raising=False)
    runner = CliRunner()
    refused = runner.invoke(cli, ["skus", "lookup", "eleme", "SKU-1"])
    assert refused.exit_code == 1
    head = head_revision()
    assert f"needs {head}: run `waimai-bridge migrate`" in refused.output
    first = runner.invoke(cli, ["migrate"])
    assert first.exit_code == 0, first.output
    assert first.output.endswith(f"upgraded from an empty schema to {head}\n")
    assert "hunter2" not in first.output
    assert "postgres:***@" in first.output
    again = runner.invoke(cli, ["migrate"])
    assert again.output.endswith(f"already at {head}\n")
    assert Database(empty_postgres_url).current_revision() == head

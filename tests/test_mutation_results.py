"""The recorded mutation results (``scripts/mutation_results.py``): what a run of mutmut
left is saved, and written back as mutmut's own files on a checkout that has none."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.mutation_results import restore, save

MODULE = "waimai_bridge/money.py"
META = {
    "exit_code_by_key": {
        "waimai_bridge.money.x_yuan_to_fen__mutmut_1": 1,
        "waimai_bridge.money.x_yuan_to_fen__mutmut_2": 0,
        "waimai_bridge.money.x_yuan_to_fen__mutmut_3": None,
    },
    "hash_by_function_name": {"x_yuan_to_fen": "abc123"},
    "type_check_error_by_key": {},
    "durations_by_key": {"waimai_bridge.money.x_yuan_to_fen__mutmut_1": 0.5},
    "estimated_durations_by_key": {},
}


def test_outcomes_run_are_saved_and_restored_as_mutmut_reads_them(tmp_path: Path) -> None:
    mutants, record = tmp_path / "mutants", tmp_path / "record.json"
    (mutants / "waimai_bridge").mkdir(parents=True)
    (mutants / f"{MODULE}.meta").write_text(json.dumps(META), "utf-8")
    record.write_text(json.dumps({"waimai_bridge/gone.py": {"functions": {}, "outcomes": {}}}))
    assert save(mutants, record) == 2
    assert set(json.loads(record.read_text("utf-8"))) == {MODULE}  # a removed module is dropped

    fresh = tmp_path / "checkout" / "mutants"
    assert restore(fresh, record) == 2
    restored = json.loads((fresh / f"{MODULE}.meta").read_text("utf-8"))
    assert restored["hash_by_function_name"] == META["hash_by_function_name"]
    assert restored["exit_code_by_key"] == {
        "waimai_bridge.money.x_yuan_to_fen__mutmut_1": 1,
        "waimai_bridge.money.x_yuan_to_fen__mutmut_2": 0,
    }
    assert set(restored) == set(META)  # every key mutmut's loader requires


def test_a_checkouts_own_results_are_not_overwritten(tmp_path: Path) -> None:
    mutants, record = tmp_path / "mutants", tmp_path / "record.json"
    (mutants / "waimai_bridge").mkdir(parents=True)
    (mutants / f"{MODULE}.meta").write_text(json.dumps(META), "utf-8")
    save(mutants, record)
    newer = {**META, "exit_code_by_key": {"waimai_bridge.money.x_yuan_to_fen__mutmut_1": 0}}
    (mutants / f"{MODULE}.meta").write_text(json.dumps(newer), "utf-8")
    assert restore(mutants, record) == 0
    assert json.loads((mutants / f"{MODULE}.meta").read_text("utf-8")) == newer
    assert restore(tmp_path / "elsewhere", tmp_path / "no-record.json") == 0

"""The shipped Prometheus alert rules load and pass their promtool unit tests, query only the
series (and labels) docs/operations.md lists, and the example scrape config loads.

promtool comes with Debian's prometheus package: ``.ci/promtool`` installs it, and these
tests fail without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
TARGET_LABELS = frozenset({"instance", "job"})
"""Labels Prometheus adds to every scraped series."""
NAME = re.compile(r"\bwaimai_[a-z_]+")
SELECTOR = re.compile(r"\b(waimai_[a-z_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")
GROUPED_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
ALERTS = {
    "WaimaiInboxStuck",
    "WaimaiNoWorkerProgress",
    "WaimaiOverdueReleases",
    "WaimaiDeadDeliveries",
    "WaimaiFailedActions",
    "WaimaiParkedEvents",
    "WaimaiStoreAnomalies",
    "WaimaiSignatureFailures",
    "WaimaiScheduledJobStalled",
    "WaimaiChannelUnauthorized",
}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """promtool run with ``args``; the test fails when promtool is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not on PATH: run .ci/promtool (it installs Debian's prometheus "
            "package, which provides promtool)"
        )
    return subprocess.run(
        [path, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "deploy/prometheus/alerts.yml"),
        ("test", "rules", "deploy/prometheus/alerts.test.yml"),
        # the config names its rule file relative to itself
        ("check", "config", "deploy/prometheus/prometheus.yml"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, (
        f"promtool {' '.join(args)} failed (exit {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )


def test_the_unit_tests_catch_a_changed_rule(tmp_path: Path) -> None:
    rules = RULES.read_text("utf-8")
    changed = rules.replace("(waimai_inbox_oldest_pending_age_seconds) > 120", "(w) > 600")
    assert changed != rules
    (tmp_path / RULES.name).write_text(changed, "utf-8")
    # the file's first test case only: it is the inbox's
    head, first = RULE_TESTS.read_text("utf-8").split("\n  - name: ")[:2]
    assert first.startswith("inbox stuck\n")
    (tmp_path / RULE_TESTS.name).write_text(f"{head}\n  - name: {first}", "utf-8")
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "WaimaiInboxStuck" in result.stdout + result.stderr


def documented() -> dict[str, frozenset[str]]:
    """The series of docs/operations.md's "Metrics" tables and their labels, by name."""
    text = OPERATIONS.read_text("utf-8")
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    series: dict[str, frozenset[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`waimai_"):
            series[cells[0].strip("`")] = frozenset(re.findall(r"`([a-z_]+)`", cells[2]))
    return series


def expressions(text: str) -> dict[str, str]:
    """Each alert's ``expr``, by alert name, from the rule file's ``- alert:`` and ``expr:``
    keys (a block scalar's lines joined)."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    alert = None
    for number, line in enumerate(lines):
        if named := re.match(r"\s*- alert:\s*(\S+)\s*$", line):
            alert = named[1]
        elif (key := re.match(r"(\s*)expr:\s*(.*?)\s*$", line)) and alert is not None:
            indent, value = len(key[1]), key[2]
            if value[:1] in ("|", ">"):
                block = []
                for follow in lines[number + 1 :]:
                    if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                        break
                    block.append(follow.strip())
                value = "\n".join(block).strip()
            found[alert] = value
    return found


def base_name(name: str) -> str:
    """The series a name in a query stands for (a histogram's ``_bucket``, ``_sum`` and
    ``_count`` stand for the histogram)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def unknown_series(expr: str, series: dict[str, frozenset[str]]) -> list[str]:
    """What ``expr`` queries that docs/operations.md does not list: series, a series'
    labels in a selector, labels grouped by."""
    problems = [f"series {name}" for name in NAME.findall(expr) if base_name(name) not in series]
    for name, matchers in SELECTOR.findall(expr):
        labels = series.get(base_name(name), frozenset()) | TARGET_LABELS
        problems += [
            f"label {label} of {name}" for label in MATCHER.findall(matchers) if label not in labels
        ]
    used = {label for name in NAME.findall(expr) for label in series.get(base_name(name), ())}
    for grouped in GROUPED_BY.findall(expr):
        problems += [
            f"grouped by {label}"
            for label in (part.strip() for part in grouped.split(","))
            if label and label not in used | TARGET_LABELS
        ]
    return problems


def test_every_alert_is_read() -> None:
    exprs = expressions(RULES.read_text("utf-8"))
    assert set(exprs) == ALERTS
    assert all(NAME.search(expr) for expr in exprs.values()), exprs


def test_alerts_query_only_documented_series() -> None:
    series = documented()
    assert len(series) >= 20, "docs/operations.md's Metrics tables were not read"
    problems = {
        alert: found
        for alert, expr in expressions(RULES.read_text("utf-8")).items()
        if (found := unknown_series(expr, series))
    }
    assert not problems, f"alerts query what docs/operations.md does not list: {problems}"


def test_the_check_sees_what_is_not_documented() -> None:
    series = {"waimai_deliveries_total": frozenset({"outcome"}), "waimai_seconds": frozenset()}
    assert unknown_series("rate(waimai_deliveries_total[5m])", series) == []
    assert unknown_series("waimai_seconds_bucket", series) == []
    assert unknown_series("max(waimai_deliveres_total)", series) == [
        "series waimai_deliveres_total"
    ]
    assert unknown_series('waimai_deliveries_total{outcom="dead"}', series) == [
        "label outcom of waimai_deliveries_total"
    ]
    assert unknown_series("sum by (platform) (waimai_deliveries_total)", series) == [
        "grouped by platform"
    ]
    assert unknown_series("sum by (instance, outcome) (waimai_deliveries_total)", series) == []

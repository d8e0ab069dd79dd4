"""The bridge's Grafana dashboard, built from a table of its panels and written as JSON.

``python deploy/grafana/dashboard.py`` writes ``waimai-bridge.json`` beside this file;
``--check`` exits 1 when that file differs from what this script builds. Each panel shows
one series of docs/operations.md ("Metrics"), grouped in rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OUTPUT = Path(__file__).with_name("waimai-bridge.json")
UID = "waimai-bridge"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
PLATFORM = 'platform=~"$platform"'
STORE = 'store=~"$store"'


@dataclass(frozen=True)
class Chart:
    """One panel: the series it shows, its title, its PromQL query, unit and legend."""

    series: str
    title: str
    query: str
    unit: str
    legend: str
    description: str = ""


def _rate(series: str, by: str, where: str = "") -> str:
    selector = f"{series}{{{where}}}" if where else series
    return f"sum by ({by}) (rate({selector}[5m]))"


def _increase(series: str, by: str) -> str:
    return f"sum by ({by}) (increase({series}[1h]))"


def _p99(histogram: str, by: str = "", where: str = "") -> str:
    selector = f"{histogram}_bucket{{{where}}}" if where else f"{histogram}_bucket"
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.99, sum by ({labels}) (rate({selector}[5m])))"


ROWS: dict[str, tuple[Chart, ...]] = {
    "Intake": (
        Chart(
            "waimai_webhook_requests_total",
            "Pushes answered, by platform and HTTP status",
            _rate("waimai_webhook_requests_total", "platform, status", PLATFORM),
            "reqps",
            "{{platform}} {{status}}",
            "401: a signing problem or someone probing; 503: the intake is full.",
        ),
        Chart(
            "waimai_webhook_seconds",
            "Push to ACK, p99 by platform",
            _p99("waimai_webhook_seconds", "platform", PLATFORM),
            "s",
            "{{platform}}",
            "Slow ACKs make platforms redeliver: look at the database's write latency.",
        ),
        Chart(
            "waimai_inbox_events_total",
            "Native events into the inbox, by platform and outcome",
            _rate("waimai_inbox_events_total", "platform, outcome", PLATFORM),
            "ops",
            "{{platform}} {{outcome}}",
            "Many duplicates: a platform redelivers because ACKs are late or lost.",
        ),
        Chart(
            "waimai_push_to_commit_seconds",
            "Push to commit in the order log, p99",
            _p99("waimai_push_to_commit_seconds"),
            "s",
            "p99",
            "Rises with queue backlog: add workers or shards.",
        ),
        Chart(
            "waimai_pulled_events_total",
            "Events pulled or fetched, by platform, source and outcome",
            _rate("waimai_pulled_events_total", "platform, source, outcome", PLATFORM),
            "ops",
            "{{platform}} {{source}} {{outcome}}",
            "New pulled events are pushes the platform failed to deliver.",
        ),
        Chart(
            "waimai_pull_failures_total",
            "Failed pulls and fetches, by platform and source",
            _rate("waimai_pull_failures_total", "platform, source", PLATFORM),
            "ops",
            "{{platform}} {{source}}",
            "A store's token or the platform's API.",
        ),
    ),
    "Queue & holds": (
        Chart(
            "waimai_inbox_pending",
            "Inbox events waiting, by shard",
            "max by (shard) (waimai_inbox_pending)",
            "short",
            "shard {{shard}}",
            "Grows: the shard's workers are down or too slow.",
        ),
        Chart(
            "waimai_inbox_oldest_pending_age_seconds",
            "Oldest waiting inbox event, by shard",
            "max by (shard) (waimai_inbox_oldest_pending_age_seconds)",
            "s",
            "shard {{shard}}",
            "Above a minute: no worker serves the shard.",
        ),
        Chart(
            "waimai_events_processed_total",
            "Inbox events taken by workers, by platform and outcome",
            _rate("waimai_events_processed_total", "platform, outcome", PLATFORM),
            "ops",
            "{{platform}} {{outcome}}",
            "failed rises: see the parked events (waimai-bridge inbox failed).",
        ),
        Chart(
            "waimai_held_orders",
            "Orders waiting out their accept hold",
            "max(waimai_held_orders)",
            "short",
            "held",
        ),
        Chart(
            "waimai_overdue_releases",
            "Overdue hold releases",
            "max(waimai_overdue_releases)",
            "short",
            "overdue",
            "Above 0 for long: no worker is running.",
        ),
        Chart(
            "waimai_orders_released_total",
            "Accept holds ended, by outcome",
            _rate("waimai_orders_released_total", "outcome"),
            "ops",
            "{{outcome}}",
        ),
        Chart(
            "waimai_swept_total",
            "Messages sent again by the sweeper, by kind",
            _rate("waimai_swept_total", "kind"),
            "ops",
            "{{kind}}",
            "Steady sweeping means messages are lost: check the broker.",
        ),
    ),
    "Actions": (
        Chart(
            "waimai_action_attempts_total",
            "Platform calls for actions, by platform, action and outcome",
            _rate("waimai_action_attempts_total", "platform, action, outcome", PLATFORM),
            "ops",
            "{{platform}} {{action}} {{outcome}}",
            "transient rises: the platform or the network is failing.",
        ),
        Chart(
            "waimai_action_retries_total",
            "Actions scheduled again, by platform and action",
            _rate("waimai_action_retries_total", "platform, action", PLATFORM),
            "ops",
            "{{platform}} {{action}}",
        ),
        Chart(
            "waimai_actions_finished_total",
            "Actions ended, by platform, action and status",
            _rate("waimai_actions_finished_total", "platform, action, status", PLATFORM),
            "ops",
            "{{platform}} {{action}} {{status}}",
            "failed: see waimai-bridge actions list --failed.",
        ),
        Chart(
            "waimai_action_verifications_total",
            "Unknown outcomes settled by reading the order, by platform and outcome",
            _rate("waimai_action_verifications_total", "platform, outcome", PLATFORM),
            "ops",
            "{{platform}} {{outcome}}",
        ),
    ),
    "Subscribers": (
        Chart(
            "waimai_deliveries_total",
            "Subscriber POSTs, by outcome",
            _rate("waimai_deliveries_total", "outcome"),
            "reqps",
            "{{outcome}}",
            "dead: a subscriber is down for longer than the give-up time.",
        ),
        Chart(
            "waimai_deliveries_pending",
            "Subscriber updates not delivered yet",
            "max(waimai_deliveries_pending)",
            "short",
            "pending",
        ),
    ),
    "Anomalies & jobs": (
        Chart(
            "waimai_anomalies_open",
            "Open anomalies, by rule",
            "max by (rule) (waimai_anomalies_open)",
            "short",
            "{{rule}}",
        ),
        Chart(
            "waimai_store_anomalies_open",
            "Open anomalies, by store",
            f"max by (store) (waimai_store_anomalies_open{{{STORE}}})",
            "short",
            "{{store}}",
            "A store's orders stop moving: call the store.",
        ),
        Chart(
            "waimai_anomalies_total",
            "Anomalies opened and resolved per hour, by rule",
            _increase("waimai_anomalies_total", "rule, change"),
            "short",
            "{{rule}} {{change}}",
        ),
        Chart(
            "waimai_dead_letters",
            "Dead letters waiting for a person, by kind",
            "max by (kind) (waimai_dead_letters)",
            "short",
            "{{kind}}",
            "inbox: parked events; actions: failed; deliveries: dead.",
        ),
        Chart(
            "waimai_job_rounds_total",
            "Scheduled job rounds per hour, by job and outcome",
            _increase("waimai_job_rounds_total", "task, outcome"),
            "short",
            "{{task}} {{outcome}}",
            "No done round for long: no worker holds the job's lease, or the database is down.",
        ),
        Chart(
            "waimai_purged_rows_total",
            "Rows purged by retention per hour, by what",
            _increase("waimai_purged_rows_total", "what"),
            "short",
            "{{what}}",
        ),
        Chart(
            "waimai_channels",
            "Stores' channels with stored credentials, by platform and status",
            f"max by (platform, status) (waimai_channels{{{PLATFORM}}})",
            "short",
            "{{platform}} {{status}}",
            "unauthorized: the store must authorize the app again (waimai-bridge auth url).",
        ),
        Chart(
            "waimai_credential_renewals_total",
            "Credential renewals per hour, by platform and outcome",
            _increase("waimai_credential_renewals_total", "platform, outcome"),
            "short",
            "{{platform}} {{outcome}}",
            "transient: the platform's token endpoint cannot be reached; refused: unauthorized.",
        ),
        Chart(
            "waimai_channel_notices_total",
            "Stores' notices of their consent per hour, by platform and change",
            _increase("waimai_channel_notices_total", "platform, change"),
            "short",
            "{{platform}} {{change}}",
        ),
    ),
}
"""The dashboard's rows, in order, and the panels of each."""


def panel(chart: Chart) -> timeseries.Panel:
    """A time series panel of one chart."""
    if chart.series not in chart.query:
        raise ValueError(f"the query of {chart.title!r} does not name {chart.series}")
    query = (
        prometheus.Dataquery()
        .expr(chart.query)
        .legend_format(chart.legend)
        .ref_id("A")
        .datasource(DATASOURCE)
    )
    built = (
        timeseries.Panel()
        .title(chart.title)
        .datasource(DATASOURCE)
        .with_target(query)
        .unit(chart.unit)
        .min(0)
        .height(8)
        .span(8)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if chart.description:
        built = built.description(chart.description)
    return built


def _label_variable(name: str, series: str) -> dashboard_builders.QueryVariable:
    every = VariableOption(selected=True, text="All", value="$__all")
    return (
        dashboard_builders.QueryVariable(name)
        .label(name)
        .datasource(DATASOURCE)
        .query(f"label_values({series}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(every)
    )


def variables() -> list[dashboard_builders.DatasourceVariable | dashboard_builders.QueryVariable]:
    """The dashboard's template variables: the Prometheus data source, platforms, stores."""
    return [
        dashboard_builders.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        _label_variable("platform", "waimai_webhook_requests_total"),
        _label_variable("store", "waimai_store_anomalies_open"),
    ]


def build() -> dict[str, object]:
    """The dashboard as a JSON object."""
    board = (
        dashboard_builders.Dashboard("waimai-bridge")
        .uid(UID)
        .description("Intake, queues, actions, subscribers and anomalies of the waimai bridge.")
        .tags(["waimai-bridge"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
    )
    for variable in variables():
        board = board.with_variable(variable)
    number = 0
    for title, charts in ROWS.items():
        number += 1
        board = board.with_row(dashboard_builders.Row(title).id(number))
        for chart in charts:
            number += 1
            board = board.with_panel(panel(chart).id(number))
    data: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return data


def render() -> str:
    """The dashboard's JSON text, as committed."""
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard's JSON, or with ``--check`` tell whether the committed one is
    what this script builds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed JSON is out of date"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text("utf-8") != text:
            print(
                f"{OUTPUT} is out of date: run python deploy/grafana/dashboard.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Prometheus metrics of the bridge: each process counts its own (a web process serves
them at ``/metrics``, a worker at ``worker --metrics-port``); what the database holds (inbox
depth, holds, dead letters, open anomalies, channels by status) is read at scrape time by
the web process (:mod:`waimai_bridge.store.gauges`). Every label value comes from a
bounded set: loaded platforms, manifest codes, actions, rules, configured stores — never
from input.
docs/operations.md lists every series and what to do when it moves."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OTHER = "other"
"""The label value standing for anything outside the label's bounded set."""

WEBHOOK_REQUESTS = Counter(
    "waimai_webhook_requests_total",
    "Pushes received, by platform and HTTP status.",
    ["platform", "status"],
)
WEBHOOK_SECONDS = Histogram(
    "waimai_webhook_seconds",
    "Time from a push's arrival to its ACK.",
    ["platform"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
INBOX_EVENTS = Counter(
    "waimai_inbox_events_total",
    "Native events received (pushed, pulled or fetched), by platform, kind (the manifest's "
    "native code) and outcome (new, duplicate).",
    ["platform", "kind", "outcome"],
)
EVENTS_PROCESSED = Counter(
    "waimai_events_processed_total",
    "Inbox events taken by a worker: applied, duplicate (already in the log) or failed.",
    ["platform", "outcome"],
)
PUSH_TO_COMMIT_SECONDS = Histogram(
    "waimai_push_to_commit_seconds",
    "Time from a push's arrival to the commit of its event in the order log.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
)
ORDERS_RELEASED = Counter(
    "waimai_orders_released_total", "Accept holds ended, by outcome.", ["outcome"]
)
SWEPT = Counter("waimai_swept_total", "Messages the sweeper sent again, by kind.", ["kind"])
ACTIONS_PERFORMED = Counter(
    "waimai_action_attempts_total",
    "Platform calls made for outbound actions, by platform, action and outcome (done, "
    "rejected, transient, unknown).",
    ["platform", "action", "outcome"],
)
ACTIONS_FINISHED = Counter(
    "waimai_actions_finished_total",
    "Outbound actions that ended, by platform, action and status (done, failed).",
    ["platform", "action", "status"],
)
ACTION_RETRIES = Counter(
    "waimai_action_retries_total",
    "Outbound actions scheduled for another try after a transient failure, by platform and action.",
    ["platform", "action"],
)
ACTIONS_VERIFIED = Counter(
    "waimai_action_verifications_total",
    "Actions of unknown outcome settled by reading the order on the platform, by platform "
    "and what it showed (done, transient, rejected, unknown).",
    ["platform", "outcome"],
)
DELIVERIES = Counter(
    "waimai_deliveries_total", "Subscriber POSTs, by outcome (done, retry, dead).", ["outcome"]
)
PULLED_EVENTS = Counter(
    "waimai_pulled_events_total",
    "Native events pulled (missed pushes) or fetched (orders read again), by platform, "
    "source (pull, fetch) and outcome (new, duplicate).",
    ["platform", "source", "outcome"],
)
PULL_FAILURES = Counter(
    "waimai_pull_failures_total",
    "Pulls of a store's missed pushes, or fetches of an order, that failed, by platform and "
    "source (pull, fetch).",
    ["platform", "source"],
)
ANOMALIES = Counter(
    "waimai_anomalies_total",
    "Anomalies opened and resolved, by rule and change (opened, resolved).",
    ["rule", "change"],
)
JOB_ROUNDS = Counter(
    "waimai_job_rounds_total",
    "Rounds of the scheduled jobs one worker at a time does (pull, anomalies, purge, "
    "credentials), by task and outcome (done, failed).",
    ["task", "outcome"],
)
CREDENTIAL_RENEWALS = Counter(
    "waimai_credential_renewals_total",
    "Renewals of a store's platform credentials, by platform and outcome (renewed, "
    "transient: tried again later, refused: the channel is unauthorized).",
    ["platform", "outcome"],
)
CHANNEL_NOTICES = Counter(
    "waimai_channel_notices_total",
    "Platform notices of a store's authorization, by platform and change (withdrawn, restored).",
    ["platform", "change"],
)
PURGED = Counter(
    "waimai_purged_rows_total",
    "Rows purged by retention, by what (inbox, deliveries, payloads, changes).",
    ["what"],
)

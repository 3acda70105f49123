"""Prometheus metrics the gateway exposes on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INBOUND = Counter(
    "cgt_inbound_messages_total",
    "Inbound messages by partner, adapter and outcome",
    ["partner", "adapter", "outcome"],
)
INTAKE_SECONDS = Histogram(
    "cgt_intake_seconds",
    "Time from receipt to commit of one inbound message",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PUBLISHED = Counter("cgt_outbox_published_total", "Events confirmed by the broker")
PUBLISH_FAILURES = Counter("cgt_outbox_publish_failures_total", "Events the broker did not confirm")
OUTBOX_BACKLOG = Gauge("cgt_outbox_backlog", "Outbox rows not yet confirmed by the broker")
BROKER_UP = Gauge("cgt_broker_up", "1 when the relay's broker connection is up")
QUARANTINE_OPEN = Gauge("cgt_quarantine_open", "Quarantined messages waiting for an operator")
IGNORED = Counter(
    "cgt_inbound_ignored_total",
    "Inbound messages acknowledged and ignored as not the gateway's business, by partner and reason",
    ["partner", "adapter", "reason"],
)
HTTP_REFUSED = Counter(
    "cgt_http_refused_total",
    "HTTP requests refused at the door (unauthenticated, too large), by route template and reason",
    ["route", "reason"],
)
REFUSED_DROPPED = Counter(
    "cgt_webhook_refused_not_kept_total",
    "Refused webhook requests of a known partner past its hourly cap: counted, their bytes not kept",
    ["partner"],
)

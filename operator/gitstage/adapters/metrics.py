"""Prometheus metrics of the operator, in one registry of our own (served by `gitstage operator`).

Labels stay bounded: repositories by their URL without userinfo, ModelRegistries by namespace and
name, deployments by the names in their specs.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes and friends
PlatformCollector(registry=REGISTRY)

POLL_SECONDS = Histogram(
    "gitstage_poll_duration_seconds",
    "Duration of one poll of a repository (ref listing, and fetch when refs changed).",
    ["repository"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
POLLS = Counter(
    "gitstage_polls_total",
    "Polls of a repository by outcome: unchanged, changed or error.",
    ["repository", "outcome"],
    registry=REGISTRY,
)
POLL_ERRORS = Counter(
    "gitstage_poll_errors_total",
    "Failed polls of a repository, by reason (AuthenticationFailed, SourceUnavailable, ...).",
    ["repository", "reason"],
    registry=REGISTRY,
)
POLLERS = Gauge(
    "gitstage_pollers",
    "Shared pollers running (one per repository, credentials and branch).",
    registry=REGISTRY,
)
SERVING = Info(
    "gitstage_serving",
    "The version a Deployment serves for an artifact's stage (from its pod template).",
    ["namespace", "registry", "deployment"],
    registry=REGISTRY,
)
ROLLOUTS = Counter(
    "gitstage_rollout_transitions_total",
    "Deployment changes applied: Created, RollingOut, RolledBack, Updated, ScaledToZero.",
    ["namespace", "registry", "deployment", "transition"],
    registry=REGISTRY,
)
API_WRITES = Counter(
    "gitstage_kube_api_writes_total",
    "Writes to the Kubernetes API made by gitstage (kopf's own bookkeeping not included).",
    ["verb", "resource"],
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "gitstage_webhook_requests_total",
    "Webhook requests by forge and answer (accepted, ignored, ping, rejected codes).",
    ["forge", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_CONNECTIONS = Gauge(
    "gitstage_webhook_connections",
    "Open webhook connections (at most --webhook-max-connections).",
    registry=REGISTRY,
)
WEBHOOK_CONNECTIONS_CLOSED = Counter(
    "gitstage_webhook_connections_closed_total",
    "Webhook connections closed before an answer: header_timeout, request_timeout, "
    "idle_timeout, header_too_large, evicted (to make room), refused (too many).",
    ["reason"],
    registry=REGISTRY,
)
WEBHOOK_POLLS = Counter(
    "gitstage_webhook_poll_requests_total",
    "ModelRegistries whose repository a webhook asked to poll (polls coalesce per repository).",
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(REGISTRY)


def api_write(verb: str, resource: str) -> None:
    API_WRITES.labels(verb=verb, resource=resource).inc()

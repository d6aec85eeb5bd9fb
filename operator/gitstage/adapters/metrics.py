"""Prometheus metrics of the operator, in one registry of our own (served by `gitstage operator`).

Labels stay bounded: repositories by their URL without userinfo, ModelRegistries by namespace and
name, deployments by the names in their specs. No `*_created` series: they double the series count
for counters and histograms and no query of ours (dashboard, alerts) reads them.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from gitstage import __version__
from gitstage.adapters.registry_metrics import RegistryMetrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide, at import
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes and friends
PlatformCollector(registry=REGISTRY)

BUILD = Info(
    "gitstage_build",
    "The running gitstage: its version and Python's (always 1).",
    registry=REGISTRY,
)
BUILD.info({"version": __version__, "python_version": platform.python_version()})

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
LAST_SUCCESSFUL_POLL = Gauge(
    "gitstage_last_successful_poll_timestamp_seconds",
    "Unix time of a repository's last poll that did not fail (since the operator started).",
    ["repository"],
    registry=REGISTRY,
)
# By namespace, not by registry: a histogram per registry was 14 series each, over half of a
# thousand registries' exposition, and rendering it took 0.3 s.
RECONCILE_SECONDS = Histogram(
    "gitstage_reconcile_duration_seconds",
    "Duration of one reconcile of a ModelRegistry (read, decide, apply, status).",
    ["namespace"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
# Each registry's own series (readiness, rollout states, reconciles, violations, serving): one
# small record per registry instead of a prometheus_client child per series.
REGISTRIES = RegistryMetrics()
REGISTRY.register(REGISTRIES)
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

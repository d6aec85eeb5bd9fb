"""From what the operator did to the Prometheus metrics: polls, reconciles, rollouts, readiness."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, ValidationError

from gitstage.adapters import metrics
from gitstage.adapters.mirror.poll_types import PollRecord
from gitstage.adapters.registry_metrics import Serving
from gitstage.operator.reconcile import Outcome
from gitstage.resources import v1alpha1 as v1

POLICY_VIOLATION = "PolicyViolation"


class ObservedStatus(BaseModel):
    """What the gauges read of a ModelRegistry's status (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    conditions: list[v1.Condition] = []
    deployments: list[v1.DeploymentState] = []

    @property
    def ready(self) -> bool:
        return any(c.type == "Ready" and c.status == "True" for c in self.conditions)


def record_poll(record: PollRecord) -> None:
    """The PollerHub's `on_poll`."""
    metrics.POLL_SECONDS.labels(record.url).observe(record.seconds)
    metrics.POLLS.labels(record.url, record.outcome).inc()
    if record.reason is not None:
        metrics.POLL_ERRORS.labels(record.url, record.reason).inc()
    if record.outcome != "error":
        metrics.LAST_SUCCESSFUL_POLL.labels(record.url).set(time.time())


@contextmanager
def reconciling(namespace: str, registry: str) -> Iterator[None]:
    """Time one reconcile and count its failure, if it fails (the error goes on)."""
    started = time.monotonic()
    try:
        yield
    except ApiException as error:
        _count_error(namespace, registry, _api_reason(error))
        raise
    except Exception as error:
        _count_error(namespace, registry, type(error).__name__)
        raise
    finally:
        metrics.RECONCILE_SECONDS.labels(namespace).observe(time.monotonic() - started)
        metrics.REGISTRIES.count_reconcile(namespace, registry)


def _api_reason(error: ApiException) -> str:
    """`Conflict`, `Forbidden`, `InternalServerError`: the HTTP reason phrase, bounded."""
    phrase = "".join(str(error.reason or "").title().split())
    return phrase or f"HTTP{error.status}"


def _count_error(namespace: str, registry: str, reason: str) -> None:
    metrics.REGISTRIES.count_error(namespace, registry, reason)


def record_reconcile(namespace: str, registry: str, outcome: Outcome) -> None:
    for transition in outcome.transitions:
        metrics.REGISTRIES.count_transition(
            namespace, registry, transition.deployment, transition.kind
        )
    violations = sum(1 for notice in outcome.notices if notice.reason == POLICY_VIOLATION)
    if violations:
        metrics.REGISTRIES.count_violations(namespace, registry, violations)
    _publish_serving(namespace, registry, outcome.states)


def record_status(namespace: str, registry: str, raw_status: dict[str, Any] | None) -> None:
    """A ModelRegistry as the API server holds it (every watch event): its Ready condition and
    each Deployment's rollout state. Violations are exported at 0 from the registry's first
    sight: increase() then sees its first violation too."""
    try:
        status = ObservedStatus.model_validate(raw_status or {})
    except ValidationError:
        status = ObservedStatus()  # not written by this version: no claim on it
    metrics.REGISTRIES.observe_status(namespace, registry, status.ready)
    rollouts = {deployment.name: deployment.rollout for deployment in status.deployments}
    metrics.REGISTRIES.set_rollouts(namespace, registry, rollouts)


def record_event() -> None:
    metrics.api_write("create", "events")


def forget(namespace: str, registry: str) -> None:
    """The registry is gone (or no longer ours): drop its series."""
    metrics.REGISTRIES.forget(namespace, registry)


def _publish_serving(namespace: str, registry: str, states: list[v1.DeploymentState]) -> None:
    serving = {
        state.name: Serving(
            state.artifact, state.stage or "", state.observed_version, state.observed_commit
        )
        for state in states
        if state.observed_version is not None and state.observed_commit is not None
    }
    metrics.REGISTRIES.set_serving(namespace, registry, serving)

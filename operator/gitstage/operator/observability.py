"""From what the operator did to the Prometheus metrics: polls, reconciles, rollouts, readiness."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from kubernetes.client.exceptions import ApiException
from prometheus_client.metrics import MetricWrapperBase
from pydantic import BaseModel, ConfigDict, ValidationError

from gitstage.adapters import metrics
from gitstage.adapters.mirror.poll_types import PollRecord
from gitstage.operator.reconcile import Outcome
from gitstage.resources import v1alpha1 as v1

ROLLOUT_STATES = ("Pending", "Progressing", "Complete", "Failed", "Held")
POLICY_VIOLATION = "PolicyViolation"

LabelValues = tuple[str, ...]


class RegistrySeries:
    """The label values each ModelRegistry's series were exported with, so that a Deployment
    or a registry that goes away takes its series with it (none lingers at its last value)."""

    def __init__(self) -> None:
        self._exported: dict[tuple[str, str], dict[MetricWrapperBase, set[LabelValues]]] = {}

    def child(self, metric: MetricWrapperBase, namespace: str, registry: str, *rest: str) -> Any:
        values = (namespace, registry, *rest)
        self._exported.setdefault((namespace, registry), {}).setdefault(metric, set()).add(values)
        return metric.labels(*values)

    def keep_only(
        self, metric: MetricWrapperBase, namespace: str, registry: str, kept: set[LabelValues]
    ) -> None:
        """Drop the registry's series of `metric` whose label values are not in `kept`."""
        exported = self._exported.get((namespace, registry), {}).get(metric, set())
        for values in exported - kept:
            _remove(metric, values)
        exported.intersection_update(kept)

    def forget(self, namespace: str, registry: str) -> None:
        for metric, exported in self._exported.pop((namespace, registry), {}).items():
            for values in exported:
                _remove(metric, values)


def _remove(metric: MetricWrapperBase, values: LabelValues) -> None:
    with suppress(KeyError):  # already gone
        metric.remove(*values)


SERIES = RegistrySeries()


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
        SERIES.child(metrics.RECONCILES, namespace, registry).inc()


def _api_reason(error: ApiException) -> str:
    """`Conflict`, `Forbidden`, `InternalServerError`: the HTTP reason phrase, bounded."""
    phrase = "".join(str(error.reason or "").title().split())
    return phrase or f"HTTP{error.status}"


def _count_error(namespace: str, registry: str, reason: str) -> None:
    SERIES.child(metrics.RECONCILE_ERRORS, namespace, registry, reason).inc()


def record_reconcile(namespace: str, registry: str, outcome: Outcome) -> None:
    for transition in outcome.transitions:
        rollouts = SERIES.child(
            metrics.ROLLOUTS, namespace, registry, transition.deployment, transition.kind
        )
        rollouts.inc()
    violations = sum(1 for notice in outcome.notices if notice.reason == POLICY_VIOLATION)
    if violations:
        SERIES.child(metrics.POLICY_VIOLATIONS, namespace, registry).inc(violations)
    _publish_serving(namespace, registry, outcome.states)


def record_status(namespace: str, registry: str, raw_status: dict[str, Any] | None) -> None:
    """A ModelRegistry as the API server holds it (every watch event): its Ready condition and
    each Deployment's rollout state."""
    try:
        status = ObservedStatus.model_validate(raw_status or {})
    except ValidationError:
        status = ObservedStatus()  # not written by this version: no claim on it
    SERIES.child(metrics.REGISTRY_READY, namespace, registry).set(1 if status.ready else 0)
    # At 0 from the registry's first sight: increase() then sees its first violation too.
    SERIES.child(metrics.POLICY_VIOLATIONS, namespace, registry)
    exported: set[LabelValues] = set()
    for deployment in status.deployments:
        states = ROLLOUT_STATES + (
            () if deployment.rollout in ROLLOUT_STATES else (deployment.rollout,)
        )
        for state in states:
            gauge = SERIES.child(
                metrics.DEPLOYMENT_ROLLOUT, namespace, registry, deployment.name, state
            )
            gauge.set(1 if state == deployment.rollout else 0)
            exported.add((namespace, registry, deployment.name, state))
    SERIES.keep_only(metrics.DEPLOYMENT_ROLLOUT, namespace, registry, exported)


def record_event() -> None:
    metrics.api_write("create", "events")


def forget(namespace: str, registry: str) -> None:
    """The registry is gone (or no longer ours): drop its series."""
    SERIES.forget(namespace, registry)


def _publish_serving(namespace: str, registry: str, states: list[v1.DeploymentState]) -> None:
    current: set[LabelValues] = set()
    for state in states:
        if state.observed_version is None or state.observed_commit is None:
            continue
        SERIES.child(metrics.SERVING, namespace, registry, state.name).info(
            {
                "artifact": state.artifact,
                "stage": state.stage or "",
                "version": state.observed_version,
                "commit": state.observed_commit,
            }
        )
        current.add((namespace, registry, state.name))
    SERIES.keep_only(metrics.SERVING, namespace, registry, current)

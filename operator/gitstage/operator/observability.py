"""From what the operator did to the Prometheus metrics: polls, rollouts, what each stage serves."""

from __future__ import annotations

from gitstage.adapters import metrics
from gitstage.adapters.mirror.poll_types import PollRecord
from gitstage.operator.reconcile import Outcome
from gitstage.resources import v1alpha1 as v1

# Deployments whose serving info is exported, per registry: to drop the series that went away.
_published: dict[tuple[str, str], set[str]] = {}


def record_poll(record: PollRecord) -> None:
    """The PollerHub's `on_poll`."""
    metrics.POLL_SECONDS.labels(record.url).observe(record.seconds)
    metrics.POLLS.labels(record.url, record.outcome).inc()
    if record.reason is not None:
        metrics.POLL_ERRORS.labels(record.url, record.reason).inc()


def record_reconcile(namespace: str, registry: str, outcome: Outcome) -> None:
    for transition in outcome.transitions:
        metrics.ROLLOUTS.labels(namespace, registry, transition.deployment, transition.kind).inc()
    _publish_serving(namespace, registry, outcome.states)


def record_event() -> None:
    metrics.api_write("create", "events")


def forget(namespace: str, registry: str) -> None:
    """The registry is gone (or no longer ours): drop its serving series."""
    for deployment in _published.pop((namespace, registry), set()):
        metrics.SERVING.remove(namespace, registry, deployment)


def _publish_serving(namespace: str, registry: str, states: list[v1.DeploymentState]) -> None:
    current: set[str] = set()
    for state in states:
        if state.observed_version is None or state.observed_commit is None:
            continue
        metrics.SERVING.labels(namespace, registry, state.name).info(
            {
                "artifact": state.artifact,
                "stage": state.stage or "",
                "version": state.observed_version,
                "commit": state.observed_commit,
            }
        )
        current.add(state.name)
    for gone in _published.get((namespace, registry), set()) - current:
        metrics.SERVING.remove(namespace, registry, gone)
    _published[(namespace, registry)] = current

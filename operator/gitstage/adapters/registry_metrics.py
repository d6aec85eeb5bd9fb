"""Each ModelRegistry's series, kept as one small record per registry and emitted at scrape time.

A prometheus_client child costs about a kilobyte (a lock, a value object, label tuples), and a
registry had ten of them: 10 MiB at a thousand registries. A record holds the same numbers in
plain slots; a registry that goes away takes its series with it in one `forget`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

ROLLOUT_STATES = ("Pending", "Progressing", "Complete", "Failed", "Held")
REGISTRY_LABELS = ["namespace", "registry"]
DEPLOYMENT_LABELS = [*REGISTRY_LABELS, "deployment"]


@dataclass(frozen=True)
class Serving:
    """The version a Deployment serves (from its pod template)."""

    artifact: str
    stage: str
    version: str
    commit: str


@dataclass(slots=True)
class _Record:
    ready: bool | None = None  # None until the registry's status is first seen
    violations: float | None = None  # exported from the status's first sight, at 0
    reconciles: float = 0.0
    errors: dict[str, float] = field(default_factory=dict)
    rollouts: dict[str, str] = field(default_factory=dict)  # deployment -> its rollout state
    serving: dict[str, Serving] = field(default_factory=dict)
    transitions: dict[tuple[str, str], float] = field(default_factory=dict)


class RegistryMetrics(Collector):
    """The per-registry series; safe to update from the loop while a thread scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], _Record] = {}

    def _record(self, namespace: str, registry: str) -> _Record:
        return self._records.setdefault((namespace, registry), _Record())

    def observe_status(self, namespace: str, registry: str, ready: bool) -> None:
        with self._lock:
            record = self._record(namespace, registry)
            record.ready = ready
            record.violations = record.violations or 0.0

    def set_rollouts(self, namespace: str, registry: str, states: Mapping[str, str]) -> None:
        with self._lock:
            self._record(namespace, registry).rollouts = dict(states)

    def set_serving(self, namespace: str, registry: str, serving: Mapping[str, Serving]) -> None:
        with self._lock:
            self._record(namespace, registry).serving = dict(serving)

    def count_violations(self, namespace: str, registry: str, found: int) -> None:
        with self._lock:
            record = self._record(namespace, registry)
            record.violations = (record.violations or 0.0) + found

    def count_reconcile(self, namespace: str, registry: str) -> None:
        with self._lock:
            self._record(namespace, registry).reconciles += 1

    def count_error(self, namespace: str, registry: str, reason: str) -> None:
        with self._lock:
            errors = self._record(namespace, registry).errors
            errors[reason] = errors.get(reason, 0.0) + 1

    def count_transition(self, namespace: str, registry: str, deployment: str, kind: str) -> None:
        with self._lock:
            transitions = self._record(namespace, registry).transitions
            transitions[(deployment, kind)] = transitions.get((deployment, kind), 0.0) + 1

    def forget(self, namespace: str, registry: str) -> None:
        with self._lock:
            self._records.pop((namespace, registry), None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            records = [(key, _copy(record)) for key, record in self._records.items()]
        yield _ready(records)
        yield _rollouts(records)
        yield _counted(
            "gitstage_reconciles",
            "Reconciles of a ModelRegistry, failed or not.",
            REGISTRY_LABELS,
            ((key, r.reconciles) for key, r in records if r.reconciles),
        )
        yield _counted(
            "gitstage_reconcile_errors",
            "Reconciles that failed, by reason: the Kubernetes API's (Conflict, Forbidden, ...)"
            " or the error's type.",
            [*REGISTRY_LABELS, "reason"],
            (((*key, reason), n) for key, r in records for reason, n in r.errors.items()),
        )
        yield _counted(
            "gitstage_policy_violations",
            "Promotion-policy violations found: a stage holder that breaks .gitstage/policy.yaml"
            " (one per new violation, as its PolicyViolation event).",
            REGISTRY_LABELS,
            ((key, r.violations) for key, r in records if r.violations is not None),
        )
        yield _counted(
            "gitstage_rollout_transitions",
            "Deployment changes applied: Created, RollingOut, RolledBack, Updated, ScaledToZero.",
            [*DEPLOYMENT_LABELS, "transition"],
            (((*key, *labels), n) for key, r in records for labels, n in r.transitions.items()),
        )
        yield _serving(records)


def _copy(record: _Record) -> _Record:
    """A snapshot: the scrape renders it after the lock is released."""
    return _Record(
        record.ready,
        record.violations,
        record.reconciles,
        dict(record.errors),
        dict(record.rollouts),
        dict(record.serving),
        dict(record.transitions),
    )


Records = list[tuple[tuple[str, str], _Record]]


def _ready(records: Records) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "gitstage_registry_ready",
        "1 when the ModelRegistry's Ready condition is True, else 0 (False, Unknown or none yet).",
        labels=REGISTRY_LABELS,
    )
    for key, record in records:
        if record.ready is not None:
            family.add_metric(list(key), 1.0 if record.ready else 0.0)
    return family


def _rollouts(records: Records) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "gitstage_deployment_rollout",
        "1 for the rollout state a Deployment is in (Pending, Progressing, Complete, Failed,"
        " Held), 0 for the others.",
        labels=[*DEPLOYMENT_LABELS, "state"],
    )
    for key, record in records:
        for deployment, current in record.rollouts.items():
            states = ROLLOUT_STATES + (() if current in ROLLOUT_STATES else (current,))
            for state in states:
                family.add_metric([*key, deployment, state], 1.0 if state == current else 0.0)
    return family


def _counted(
    name: str,
    documentation: str,
    labels: list[str],
    values: Iterable[tuple[tuple[str, ...], float]],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


def _serving(records: Records) -> InfoMetricFamily:
    family = InfoMetricFamily(
        "gitstage_serving",
        "The version a Deployment serves for an artifact's stage (from its pod template).",
        labels=DEPLOYMENT_LABELS,
    )
    for key, record in records:
        for deployment, serving in record.serving.items():
            info = {
                "artifact": serving.artifact,
                "stage": serving.stage,
                "version": serving.version,
                "commit": serving.commit,
            }
            family.add_metric([*key, deployment], info)
    return family

"""What the operator's /metrics holds: samples by name, and the catalog of every series it can
export (what dashboards and alert rules may query)."""

from __future__ import annotations

import contextlib
import urllib.request

from prometheus_client.metrics import Info, MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from gitstage.adapters import metrics
from gitstage.operator import observability
from gitstage.operator.reconcile import Notice, Outcome, Transition
from gitstage.resources import v1alpha1 as v1

Labels = tuple[tuple[str, str], ...]
PLACEHOLDER = "catalog-placeholder"


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of an exposition, by its name and its sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(url: str) -> dict[tuple[str, Labels], float]:
    """`parse` of what a running operator serves at `url` (its /metrics, on loopback)."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return parse(response.read().decode())


def samples(name: str) -> dict[Labels, float]:
    """The current samples of `name` in this process's exposition, by their sorted labels."""
    exposed = parse(metrics.exposition().decode())
    return {labels: value for (found, labels), value in exposed.items() if found == name}


def catalog() -> dict[str, frozenset[str]]:
    """Every sample name the exposition can hold, with its label names.

    A labelled metric shows no sample until it has a child: each gets one for the scrape, with
    placeholder values, and loses it after. The names and labels are then prometheus_client's
    own exposition, not a re-implementation of its suffix rules. A registry's own series (and
    the serving info's keys) are published by the operator's own code, for a placeholder
    registry that fails one reconcile, then rolls out and finds a violation.
    """
    added = [_placeholder_child(m) for m in _metrics() if not isinstance(m, Info)]
    _placeholder_registry()
    try:
        text = metrics.exposition().decode()
    finally:
        for metric, values in added:
            if values:
                metric.remove(*values)
        observability.forget(PLACEHOLDER, PLACEHOLDER)
    found: dict[str, frozenset[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] = found.get(sample.name, frozenset()) | frozenset(sample.labels)
    return found


def _placeholder_registry() -> None:
    with contextlib.suppress(ValueError), observability.reconciling(PLACEHOLDER, PLACEHOLDER):
        raise ValueError(PLACEHOLDER)
    observed = v1.ModelRegistryStatus(
        conditions=[
            v1.Condition(
                type="Ready", status="True", reason=PLACEHOLDER, last_transition_time=PLACEHOLDER
            )
        ],
        deployments=[_served()],
    )
    observability.record_status(
        PLACEHOLDER, PLACEHOLDER, observed.model_dump(by_alias=True, exclude_none=True)
    )
    outcome = Outcome(
        notices=[Notice("Warning", observability.POLICY_VIOLATION, PLACEHOLDER)],
        transitions=[Transition(PLACEHOLDER, "Created")],
        states=[_served()],
    )
    observability.record_reconcile(PLACEHOLDER, PLACEHOLDER, outcome)


def _served() -> v1.DeploymentState:
    return v1.DeploymentState(
        name=PLACEHOLDER,
        artifact=PLACEHOLDER,
        stage=PLACEHOLDER,
        observed_version=PLACEHOLDER,
        observed_commit=PLACEHOLDER,
    )


def _metrics() -> list[MetricWrapperBase]:
    return [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]


def _placeholder_child(metric: MetricWrapperBase) -> tuple[MetricWrapperBase, tuple[str, ...]]:
    names: tuple[str, ...] = tuple(metric._labelnames)  # no public accessor
    if not names:
        return metric, ()
    values = (PLACEHOLDER,) * len(names)
    metric.labels(*values)
    return metric, values

"""The conditions gitstage writes, judged by the tools platform teams use: kstatus (cli-utils'
rules, which kubectl, Flux and kpt apply) and the Argo CD health check we ship (run by a real
Lua interpreter). Each case is a status the operator's condition code produces."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.status import Refusal, condition_updates, merge_conditions, rfc3339
from tests.support.hostile_specs import VALID
from tests.support.kstatus import argocd_health, kstatus


@dataclass(frozen=True)
class Source:
    registry: object | None = True
    error: str | None = None
    error_reason: str | None = None
    permanent: bool = False


def state(rollout: str, message: str = "") -> v1.DeploymentState:
    return v1.DeploymentState(name="churn-prod", artifact="churn", rollout=rollout, message=message)


SPEC = v1.ModelRegistrySpec.model_validate(VALID)
SUSPENDED = v1.ModelRegistrySpec.model_validate({**VALID, "suspend": True})


@dataclass(frozen=True)
class Case:
    spec: v1.ModelRegistrySpec
    source: Source | None
    states: list[v1.DeploymentState]
    refusals: list[Refusal]
    kstatus: str
    argocd: str


CASES = {
    "waiting for the first poll": Case(SPEC, None, [], [], "InProgress", "Progressing"),
    "rolling out": Case(SPEC, Source(), [state("Progressing")], [], "InProgress", "Progressing"),
    "pods pending": Case(SPEC, Source(), [state("Pending")], [], "InProgress", "Progressing"),
    "serving": Case(SPEC, Source(), [state("Complete")], [], "Current", "Healthy"),
    "rollout past its deadline": Case(SPEC, Source(), [state("Failed")], [], "Failed", "Degraded"),
    "fetch failed": Case(
        SPEC, Source(), [state("Failed", "fetcher exited 2")], [], "Failed", "Degraded"
    ),
    "policy violation": Case(
        SPEC,
        Source(),
        [state("Complete")],
        [Refusal("PolicyViolation", "churn-prod: tag churn#prod#3 is not signed")],
        "Failed",
        "Degraded",
    ),
    "forbidden by the tenant's RBAC": Case(
        SPEC, Source(), [state("Pending")], [Refusal("Forbidden", "x")], "Failed", "Degraded"
    ),
    "wrong credentials": Case(
        SPEC,
        Source(None, "authentication failed", "AuthenticationFailed", permanent=True),
        [],
        [],
        "Failed",
        "Degraded",
    ),
    "unknown host key": Case(
        SPEC,
        Source(None, "host key", "HostKeyUnknown", permanent=True),
        [],
        [],
        "Failed",
        "Degraded",
    ),
    "server down, retrying": Case(
        SPEC,
        Source(None, "connection refused", "SourceUnavailable"),
        [],
        [],
        "InProgress",
        "Progressing",
    ),
    "held: deprecated artifact": Case(
        SPEC, Source(), [state("Held", "churn is deprecated")], [], "Failed", "Degraded"
    ),
    # kstatus reads a Ready=False as in progress (as for a suspended Flux object); Argo CD has a
    # state of its own for it.
    "suspended": Case(SUSPENDED, Source(), [state("Complete")], [], "InProgress", "Suspended"),
}


def registry_object(case: Case, *, generation: int = 3, observed: int = 3) -> dict[str, Any]:
    now = rfc3339(datetime.now(UTC))
    updates = condition_updates(case.spec, case.source, case.states, case.refusals)
    conditions = merge_conditions([], updates, observed, now)
    status = {
        "observedGeneration": observed,
        "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
    }
    return {
        "apiVersion": f"{v1.GROUP}/{v1.VERSION}",
        "kind": v1.KIND,
        "metadata": {"name": "churn", "namespace": "ml", "generation": generation},
        "spec": case.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        "status": status,
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_kstatus_reads_each_status_as_meant(name: str) -> None:
    case = CASES[name]
    assert kstatus(registry_object(case)) == case.kstatus


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_argocd_health_check_reads_each_status_as_meant(name: str) -> None:
    case = CASES[name]
    status, message = argocd_health(registry_object(case))
    assert status == case.argocd
    if status == "Degraded":
        assert message  # says why


def test_a_spec_not_yet_observed_is_in_progress_for_both() -> None:
    stale = registry_object(CASES["serving"], generation=4, observed=3)
    assert kstatus(stale) == "InProgress"
    assert argocd_health(stale)[0] == "Progressing"


def test_ready_is_unknown_while_in_progress_and_never_both_stalled_and_reconciling() -> None:
    for case in CASES.values():
        by_type = {
            c.type: c.status
            for c in condition_updates(case.spec, case.source, case.states, case.refusals)
        }
        assert not (by_type["Stalled"] and by_type["Reconciling"])
        if by_type["Reconciling"]:
            assert by_type["Ready"] is None or (case.source is not None and case.source.error)


def test_condition_times_are_rfc3339_utc() -> None:
    conditions = registry_object(CASES["serving"])["status"]["conditions"]
    for condition in conditions:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", condition["lastTransitionTime"])

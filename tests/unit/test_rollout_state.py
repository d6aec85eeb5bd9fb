"""When a rollout counts as complete: as `kubectl rollout status` decides, from the counts a
real ReplicaSet rollout goes through (old pods stay ready while new ones start)."""

from __future__ import annotations

from gitstage.adapters.kube.deployments import ObservedDeployment
from gitstage.workloads.render import Serving
from gitstage.workloads.status import rollout_state

V2 = Serving("churn", "v2.0.0", "c2" * 20, "prod", "churn#prod#2", None)


def observed(*, total: int, updated: int, ready: int, available: int) -> ObservedDeployment:
    return ObservedDeployment(
        name="churn-prod",
        annotations={},
        generation=2,
        observed_generation=2,
        replicas=2,
        total_replicas=total,
        updated_replicas=updated,
        ready_replicas=ready,
        available_replicas=available,
        progressing_reason="ReplicaSetUpdated",
        template_annotations={},
    )


def test_both_new_pods_created_one_ready_and_an_old_one_serving_is_progressing() -> None:
    midway = observed(total=3, updated=2, ready=2, available=2)
    assert rollout_state(V2, midway, V2, None) == "Progressing"


def test_new_pods_not_yet_available_is_progressing() -> None:
    starting = observed(total=2, updated=2, ready=1, available=1)
    assert rollout_state(V2, starting, V2, None) == "Progressing"


def test_every_pod_updated_and_available_with_no_old_pod_left_is_complete() -> None:
    done = observed(total=2, updated=2, ready=2, available=2)
    assert rollout_state(V2, done, V2, None) == "Complete"

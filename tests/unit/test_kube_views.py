"""Deployments and pods read as typed views straight from the API server's JSON."""

from __future__ import annotations

import json

from gitstage.adapters.kube import views
from gitstage.adapters.kube.deployments import _container_failure

DEPLOYMENT = {
    "kind": "Deployment",
    "metadata": {
        "name": "churn-prod",
        "generation": 4,
        "annotations": {"gitstage.dev/version": "v1.2.0"},
        "managedFields": [{"manager": "gitstage", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "churn"}},
        "template": {"metadata": {"annotations": {"gitstage.dev/commit": "abc"}}, "spec": {}},
    },
    "status": {
        "observedGeneration": 4,
        "replicas": 3,
        "updatedReplicas": 1,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "unavailableReplicas": 1,
        "conditions": [{"type": "Progressing", "reason": "ReplicaSetUpdated", "status": "True"}],
    },
}


def test_a_deployment_is_read_with_every_field_the_operator_uses() -> None:
    found = views.Deployment.model_validate_json(json.dumps(DEPLOYMENT))
    assert found.metadata.name == "churn-prod"
    assert found.metadata.generation == 4
    assert found.metadata.annotations == {"gitstage.dev/version": "v1.2.0"}
    assert found.spec.replicas == 2
    assert found.spec.selector.match_labels == {"app": "churn"}
    assert found.spec.template.metadata.annotations == {"gitstage.dev/commit": "abc"}
    status = found.status
    assert (status.observed_generation, status.replicas, status.updated_replicas) == (4, 3, 1)
    assert (status.ready_replicas, status.available_replicas, status.unavailable_replicas) == (
        2,
        2,
        1,
    )
    assert [(c.type, c.reason) for c in status.conditions] == [("Progressing", "ReplicaSetUpdated")]


def test_a_new_deployment_without_status_reads_as_zeros() -> None:
    found = views.Deployment.model_validate_json(b'{"metadata": {"name": "x"}, "spec": {}}')
    assert found.spec.replicas is None  # the API server's default (1) applies
    assert found.status.replicas == 0
    assert found.status.conditions == []


def fetcher(status: dict[str, object]) -> views.ContainerStatus:
    return views.ContainerStatus.model_validate({"name": "gitstage-fetch", **status})


def test_fetcher_failures_read_from_pod_json() -> None:
    exited = fetcher(
        {
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
            "lastState": {"terminated": {"exitCode": 2, "message": "line 1\nno such path"}},
            "restartCount": 3,
        }
    )
    assert _container_failure(exited) == "fetcher exited 2, 3 restarts: no such path"
    pulling = fetcher({"state": {"waiting": {"reason": "ErrImagePull", "message": " denied "}}})
    assert _container_failure(pulling) == "fetcher ErrImagePull: denied"
    running = fetcher({"state": {"running": {"startedAt": "2026-12-03T00:00:00Z"}}})
    assert _container_failure(running) is None
    starting = fetcher({"state": {"waiting": {"reason": "PodInitializing"}}})
    assert _container_failure(starting) is None


def test_a_pod_list_keeps_only_what_is_named() -> None:
    body = {
        "items": [
            {
                "metadata": {"name": "p1", "annotations": {"gitstage.dev/commit": "abc"}},
                "spec": {"containers": [{"name": "server", "image": "srv:1"}]},
                "status": {
                    "phase": "Pending",
                    "initContainerStatuses": [{"name": "gitstage-fetch"}],
                },
            },
            {"metadata": {"name": "p2"}},
        ]
    }
    pods = views.PodList.model_validate_json(json.dumps(body)).items
    assert [p.metadata.name for p in pods] == ["p1", "p2"]
    assert pods[0].status is not None
    assert [c.name for c in pods[0].status.init_container_statuses] == ["gitstage-fetch"]
    assert pods[1].status is None

"""Deployments: server-side apply under gitstage's field manager, and what is observed of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube import rest, views
from gitstage.adapters.metrics import api_write
from gitstage.workloads.render import ANNOTATION_COMMIT, FETCHER_NAME

FIELD_MANAGER = "gitstage"
APPS = "apps/v1"


@dataclass(frozen=True)
class ObservedDeployment:
    name: str
    annotations: dict[str, str]
    generation: int
    observed_generation: int
    replicas: int | None
    total_replicas: int  # pods of every ReplicaSet, old ones included (status.replicas)
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    progressing_reason: str | None
    template_annotations: dict[str, str]
    # Why the pods of the current template cannot start (the fetcher failed), while rolling out.
    pod_failure: str | None = None


class ForbiddenError(PermissionError):
    """The API server refused a request as the impersonated account (its one-line reason)."""


def apply(manifest: dict[str, Any], as_user: str | None = None) -> ObservedDeployment:
    """Server-side apply: fields owned by others (an HPA's replicas, kubectl annotations) stay.
    Returns the Deployment as the API server stored it: its answer, no read after the write.

    With `as_user`, applied as that user: a tenant's Deployment gets only the tenant's rights."""
    metadata = manifest["metadata"]
    namespace = metadata["namespace"]
    where = rest.group_path(APPS, namespace, "deployments", metadata["name"])
    answer = server_side_apply(where, manifest, as_user)
    return _observed(namespace, views.Deployment.model_validate_json(answer))


def server_side_apply(where: str, manifest: dict[str, Any], as_user: str | None) -> bytes:
    """PATCH `manifest` to the object's path as a forced apply under gitstage's field manager;
    the object as stored. A refusal of the impersonated user is a ForbiddenError."""
    api_write("apply", f"{manifest['kind'].lower()}s")
    try:
        return rest.call(
            "PATCH",
            where,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=manifest,
            content_type=rest.APPLY_PATCH,
            as_user=as_user,
        )
    except ApiException as error:
        if error.status == 403 and as_user is not None:
            raise ForbiddenError(api_message(error)) from None
        raise


def api_message(error: ApiException) -> str:
    """The API server's own message (one line), else the HTTP reason."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    text = str(message or error.reason or f"HTTP {error.status}")
    return " ".join(text.split())[:300]


def observe(namespace: str, name: str) -> ObservedDeployment | None:
    answer = rest.get(rest.group_path(APPS, namespace, "deployments", name))
    if answer is None:
        return None
    return _observed(namespace, views.Deployment.model_validate_json(answer))


def _observed(namespace: str, deployment: views.Deployment) -> ObservedDeployment:
    spec, status = deployment.spec, deployment.status
    progressing = next((c.reason for c in status.conditions if c.type == "Progressing"), None)
    template_annotations = dict(spec.template.metadata.annotations)
    desired = spec.replicas if spec.replicas is not None else 1
    updated = status.updated_replicas
    # Mid-rollout: old pods still counted, new ones missing or unavailable.
    rolling = updated < desired or status.replicas > updated or bool(status.unavailable_replicas)
    failure = (
        _pod_failure(
            namespace, spec.selector.match_labels, template_annotations.get(ANNOTATION_COMMIT)
        )
        if rolling
        else None
    )
    return ObservedDeployment(
        name=deployment.metadata.name,
        annotations=dict(deployment.metadata.annotations),
        generation=deployment.metadata.generation,
        observed_generation=status.observed_generation,
        replicas=spec.replicas,
        total_replicas=status.replicas,
        updated_replicas=status.updated_replicas,
        ready_replicas=status.ready_replicas,
        available_replicas=status.available_replicas,
        progressing_reason=progressing,
        template_annotations=template_annotations,
        pod_failure=failure,
    )


# Waiting reasons of a container that will not start without a change (image, config).
_STUCK = {
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}


def _pod_failure(namespace: str, selector: dict[str, str], commit: str | None) -> str | None:
    """The first failing fetcher among the pods of the template pinned to `commit`."""
    if not selector or commit is None:
        return None
    labels = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    answer = rest.call("GET", rest.core_path(namespace, "pods"), query=[("labelSelector", labels)])
    for pod in views.PodList.model_validate_json(answer).items:
        if pod.metadata.annotations.get(ANNOTATION_COMMIT) != commit or pod.status is None:
            continue
        for container in pod.status.init_container_statuses:
            if container.name == FETCHER_NAME:
                reason = _container_failure(container)
                if reason is not None:
                    return f"pod {pod.metadata.name}: {reason}"
    return None


def _container_failure(container: views.ContainerStatus) -> str | None:
    """Why the fetcher cannot finish, or None while it runs (a restart after a kill or a
    transient error is a retry in progress, not a failure yet)."""
    state, last = container.state, container.last_state
    if state is not None and state.running is not None:
        return None
    terminated = (state.terminated if state else None) or (last.terminated if last else None)
    restarts = f", {container.restart_count} restarts" if container.restart_count else ""
    if terminated is not None and terminated.exit_code != 0:
        said = (terminated.message or terminated.reason or "").strip().splitlines()
        detail = f": {said[-1][:300]}" if said else ""
        return f"fetcher exited {terminated.exit_code}{restarts}{detail}"
    waiting = state.waiting if state else None
    if waiting is not None and waiting.reason in _STUCK:
        return f"fetcher {waiting.reason}: {(waiting.message or '').strip()[:300]}"
    return None

"""Deployments: server-side apply under gitstage's field manager, and what is observed of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube.client import apps
from gitstage.adapters.metrics import api_write

FIELD_MANAGER = "gitstage"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ObservedDeployment:
    name: str
    annotations: dict[str, str]
    generation: int
    observed_generation: int
    replicas: int | None
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    progressing_reason: str | None
    template_annotations: dict[str, str]


def apply(manifest: dict[str, Any]) -> None:
    """Server-side apply: fields owned by others (an HPA's replicas, kubectl annotations) stay."""
    metadata = manifest["metadata"]
    api_write("apply", "deployments")
    apps().patch_namespaced_deployment(
        name=metadata["name"],
        namespace=metadata["namespace"],
        body=manifest,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type=APPLY_PATCH,
    )


def observe(namespace: str, name: str) -> ObservedDeployment | None:
    try:
        deployment = apps().read_namespaced_deployment(name=name, namespace=namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    status = deployment.status or client.V1DeploymentStatus()
    metadata = deployment.metadata or client.V1ObjectMeta()
    progressing = next((c.reason for c in status.conditions or [] if c.type == "Progressing"), None)
    template_meta = deployment.spec.template.metadata if deployment.spec else None
    return ObservedDeployment(
        name=name,
        annotations=dict(metadata.annotations or {}),
        generation=metadata.generation or 0,
        observed_generation=status.observed_generation or 0,
        replicas=deployment.spec.replicas if deployment.spec else None,
        updated_replicas=status.updated_replicas or 0,
        ready_replicas=status.ready_replicas or 0,
        available_replicas=status.available_replicas or 0,
        progressing_reason=progressing,
        template_annotations=dict((template_meta.annotations if template_meta else None) or {}),
    )

"""The Service in front of a binding's pods (optional): pure, byte-stable, like the Deployment."""

from __future__ import annotations

from typing import Any

from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.labels import label_value
from gitstage.workloads.render import (
    ANNOTATION_DIGEST,
    LABEL_BINDING,
    LABEL_REGISTRY,
    MANAGED_BY,
    Manifest,
    Owner,
    manifest_digest,
    owner_reference,
)


def service_ports(binding: v1.DeploymentBinding) -> list[Manifest]:
    """The serving containers' ports, by name where they have one (a Service needs one at least)."""
    ports: list[Manifest] = []
    for container in binding.template.spec.get("containers") or []:
        for port in container.get("ports") or []:
            if not isinstance(port, dict) or not isinstance(port.get("containerPort"), int):
                continue
            name = port.get("name")
            entry: Manifest = {
                "port": port["containerPort"],
                "targetPort": name or port["containerPort"],
                "protocol": port.get("protocol", "TCP"),
            }
            if name:
                entry["name"] = name
            ports.append(entry)
    if len(ports) > 1:  # a Service with several ports must name each
        ports = [{"name": p.get("name") or f"port-{p['port']}", **p} for p in ports]
    return ports


def render_service(owner: Owner, binding: v1.DeploymentBinding) -> Manifest | None:
    """The Service of `binding.service`, or None when not asked for or no port is declared."""
    ports = service_ports(binding)
    if binding.service is None or not ports:
        return None
    selector = {LABEL_REGISTRY: label_value(owner.name), LABEL_BINDING: binding.name}
    metadata: Manifest = {
        "name": binding.name,
        "namespace": owner.namespace,
        "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, **selector},
        "annotations": dict(binding.service.annotations),
        "ownerReferences": [owner_reference(owner)],
    }
    spec: dict[str, Any] = {
        "type": binding.service.type.value,
        "selector": selector,
        "ports": ports,
    }
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}
    metadata["annotations"][ANNOTATION_DIGEST] = manifest_digest(manifest)
    return manifest


def service_url(binding: v1.DeploymentBinding, namespace: str) -> str | None:
    """`http://<name>.<namespace>.svc:<first port>`, the model's address inside the cluster."""
    ports = service_ports(binding)
    if binding.service is None or not ports:
        return None
    return f"http://{binding.name}.{namespace}.svc:{ports[0]['port']}"

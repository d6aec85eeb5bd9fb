"""The Services gitstage renders for bindings that ask for one: applied, observed, removed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube.client import core
from gitstage.adapters.kube.deployments import ForbiddenError, api_message, server_side_apply
from gitstage.adapters.metrics import api_write
from gitstage.workloads.render import ANNOTATION_DIGEST


@dataclass(frozen=True)
class ObservedService:
    digest: str | None
    owner_uids: tuple[str, ...]


def observe(namespace: str, name: str) -> ObservedService | None:
    try:
        found = core().read_namespaced_service(name=name, namespace=namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    metadata = found.metadata
    annotations = (metadata.annotations if metadata else None) or {}
    owners = tuple(o.uid for o in (metadata.owner_references if metadata else None) or [])
    return ObservedService(annotations.get(ANNOTATION_DIGEST), owners)


def apply(manifest: dict[str, Any], as_user: str | None = None) -> None:
    server_side_apply(core(as_user).patch_namespaced_service, manifest, as_user)


def delete(namespace: str, name: str, as_user: str | None = None) -> None:
    api_write("delete", "services")
    try:
        core(as_user).delete_namespaced_service(name=name, namespace=namespace)
    except ApiException as error:
        if error.status == 404:
            return
        if error.status == 403 and as_user is not None:
            raise ForbiddenError(api_message(error)) from None
        raise

"""The Services gitstage renders for bindings that ask for one: applied, observed, removed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube import rest, views
from gitstage.adapters.kube.deployments import ForbiddenError, api_message, server_side_apply
from gitstage.adapters.metrics import api_write
from gitstage.workloads.render import ANNOTATION_DIGEST


@dataclass(frozen=True)
class ObservedService:
    digest: str | None
    owner_uids: tuple[str, ...]


def observe(namespace: str, name: str) -> ObservedService | None:
    answer = rest.get(rest.core_path(namespace, "services", name))
    if answer is None:
        return None
    metadata = views.Service.model_validate_json(answer).metadata
    owners = tuple(owner.uid for owner in metadata.owner_references)
    return ObservedService(metadata.annotations.get(ANNOTATION_DIGEST), owners)


def apply(manifest: dict[str, Any], as_user: str | None = None) -> None:
    metadata = manifest["metadata"]
    where = rest.core_path(metadata["namespace"], "services", metadata["name"])
    server_side_apply(where, manifest, as_user)


def delete(namespace: str, name: str, as_user: str | None = None) -> None:
    api_write("delete", "services")
    try:
        rest.call("DELETE", rest.core_path(namespace, "services", name), as_user=as_user)
    except ApiException as error:
        if error.status == 404:
            return
        if error.status == 403 and as_user is not None:
            raise ForbiddenError(api_message(error)) from None
        raise

"""coordination.k8s.io Leases: read, create and update one, with optimistic concurrency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube.client import api_client
from gitstage.adapters.metrics import api_write


def _api() -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api_client())


class LeaseConflictError(RuntimeError):
    """Someone else wrote the Lease since it was read (or created it first)."""


def read(namespace: str, name: str) -> client.V1Lease | None:
    try:
        return _api().read_namespaced_lease(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


@dataclass(frozen=True)
class Claim:
    """What a replica writes into the Lease: itself as holder, renewed `now`."""

    holder: str
    duration_seconds: int
    now: datetime
    acquired: bool  # a new holder (or a new Lease), not a renewal


def write(namespace: str, name: str, current: client.V1Lease | None, claim: Claim) -> None:
    """Create the Lease, or replace `current` (its resourceVersion guards against a racer)."""
    before = current.spec if current is not None and current.spec is not None else None
    transitions = (before.lease_transitions or 0) if before else 0
    keep_acquired = before is not None and not claim.acquired
    spec = client.V1LeaseSpec(
        holder_identity=claim.holder,
        lease_duration_seconds=claim.duration_seconds,
        acquire_time=before.acquire_time if keep_acquired and before else claim.now,
        renew_time=claim.now,
        lease_transitions=transitions + (1 if claim.acquired and before else 0),
    )
    api_write("update" if current else "create", "leases")
    try:
        if current is None:
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=name), spec=spec)
            _api().create_namespaced_lease(namespace, body)
        else:
            current.spec = spec
            _api().replace_namespaced_lease(name, namespace, current)
    except ApiException as error:
        if error.status == 409:
            raise LeaseConflictError(f"lease {namespace}/{name} changed under us") from None
        raise

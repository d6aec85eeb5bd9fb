"""coordination.k8s.io Leases: read, create and update one, with optimistic concurrency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube import rest, views
from gitstage.adapters.metrics import api_write

API = "coordination.k8s.io/v1"
# Well inside a Lease's 15 s: a leader whose renewal hangs must notice in time to stop before
# a standby takes over (leader.py), not after the default 60 s read timeout.
TIMEOUT = (3.0, 5.0)


class LeaseConflictError(RuntimeError):
    """Someone else wrote the Lease since it was read (or created it first)."""


def read(namespace: str, name: str) -> views.Lease | None:
    try:
        answer = rest.call("GET", rest.group_path(API, namespace, "leases", name), timeout=TIMEOUT)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return views.Lease.model_validate_json(answer)


@dataclass(frozen=True)
class Claim:
    """What a replica writes into the Lease: itself as holder, renewed `now`."""

    holder: str
    duration_seconds: int
    now: datetime
    acquired: bool  # a new holder (or a new Lease), not a renewal


def write(namespace: str, name: str, current: views.Lease | None, claim: Claim) -> None:
    """Create the Lease, or update `current`'s spec (its resourceVersion, sent in the merge
    patch, guards against a racer; its labels and annotations stay)."""
    before = current.spec if current is not None else None
    transitions = (before.lease_transitions or 0) if before else 0
    keep_acquired = before is not None and not claim.acquired
    acquired_at = before.acquire_time if keep_acquired and before else claim.now
    spec = {
        "holderIdentity": claim.holder,
        "leaseDurationSeconds": claim.duration_seconds,
        "acquireTime": micro_time(acquired_at or claim.now),
        "renewTime": micro_time(claim.now),
        "leaseTransitions": transitions + (1 if claim.acquired and before else 0),
    }
    metadata: dict[str, Any] = {"name": name}
    api_write("update" if current else "create", "leases")
    try:
        if current is None:
            body = {"apiVersion": API, "kind": "Lease", "metadata": metadata, "spec": spec}
            where = rest.group_path(API, namespace, "leases")
            rest.call("POST", where, body=body, timeout=TIMEOUT)
        else:
            metadata["resourceVersion"] = current.metadata.resource_version
            where = rest.group_path(API, namespace, "leases", name)
            body = {"metadata": metadata, "spec": spec}
            rest.call("PATCH", where, body=body, content_type=rest.MERGE_PATCH, timeout=TIMEOUT)
    except ApiException as error:
        if error.status == 409:
            raise LeaseConflictError(f"lease {namespace}/{name} changed under us") from None
        raise


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server writes it: UTC, six fractional digits, a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

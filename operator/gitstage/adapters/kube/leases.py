"""coordination.k8s.io Leases: read, create and update one, with optimistic concurrency."""

from __future__ import annotations

import json
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


@dataclass(frozen=True)
class StoredLease:
    """The Lease as read: its typed spec, and the object itself, which an update sends back
    whole (its resourceVersion, labels and annotations with it)."""

    body: dict[str, Any]
    spec: views.LeaseSpec | None


def read(namespace: str, name: str) -> StoredLease | None:
    answer = rest.get(rest.group_path(API, namespace, "leases", name), timeout=TIMEOUT)
    if answer is None:
        return None
    body = json.loads(answer)
    return StoredLease(body, views.Lease.model_validate(body).spec)


@dataclass(frozen=True)
class Claim:
    """What a replica writes into the Lease: itself as holder, renewed `now`."""

    holder: str
    duration_seconds: int
    now: datetime
    acquired: bool  # a new holder (or a new Lease), not a renewal


def write(namespace: str, name: str, current: StoredLease | None, claim: Claim) -> None:
    """Create the Lease, or replace `current` with the new spec: an update (the verb the
    chart's Role grants), its resourceVersion guarding against a racer."""
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
    api_write("update" if current else "create", "leases")
    try:
        if current is None:
            body = {"apiVersion": API, "kind": "Lease", "metadata": {"name": name}, "spec": spec}
            where = rest.group_path(API, namespace, "leases")
            rest.call("POST", where, body=body, timeout=TIMEOUT)
        else:
            where = rest.group_path(API, namespace, "leases", name)
            rest.call("PUT", where, body={**current.body, "spec": spec}, timeout=TIMEOUT)
    except ApiException as error:
        if error.status == 409:
            raise LeaseConflictError(f"lease {namespace}/{name} changed under us") from None
        raise


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server writes it: UTC, six fractional digits, a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

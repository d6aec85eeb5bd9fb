"""The dashboard's provider in the operator: snapshots of the workers' memory, no API or git call.

Each worker keeps its last valid spec, its source view (the registry the poller read), the
Deployments' states of its last reconcile and the Events it posted; this module only copies
references into the dashboard's snapshot types, on the event loop.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from gitstage.adapters.git.policy_reader import TagSignatures
from gitstage.dashboard.inputs import RegistrySnapshot, SignatureCheck, Snapshot, shown_url
from gitstage.operator.feed import SourceView
from gitstage.operator.leader import Leadership
from gitstage.operator.worker import RegistryWorker


class WorkersProvider:
    """Implements `gitstage.dashboard.inputs.Provider` over the running workers."""

    def __init__(
        self, workers: Mapping[str, RegistryWorker], leadership: Leadership | None = None
    ) -> None:
        self._workers = workers
        self._leadership = leadership or Leadership()

    def snapshot(self) -> Snapshot:
        workers = list(self._workers.values())
        registries = tuple(registry_snapshot(w) for w in workers)
        return Snapshot(registries, cluster=True, standby=not self._leadership.leader)

    def fingerprint(self) -> Hashable:
        # A new source view is a new object: its id moves with every poll result.
        workers = sorted((key, w.revision, id(w.source)) for key, w in list(self._workers.items()))
        return (self._leadership.leader, tuple(workers))


def registry_snapshot(worker: RegistryWorker) -> RegistrySnapshot:
    spec, source = worker.spec, worker.source
    registry = source.registry if source else None
    return RegistrySnapshot(
        key=worker.key,
        namespace=worker.namespace,
        url=shown_url(spec.source.url) if spec else "",
        branch=spec.source.branch if spec else None,
        state=registry.state if registry else None,
        configured_stages=registry.config.stages if registry else None,
        head=source.head if source else None,
        changed_at=source.changed_at if source else None,
        source_error=source.error or "" if source else "",
        deployments=worker.states,
        events=tuple(worker.posted),
        signatures=_verified(source),
    )


def _verified(source: SourceView | None) -> SignatureCheck | None:
    """What the policy check verified already (the dashboard never runs a verification)."""
    lookup = source.policy.signatures if source and source.policy else None
    return lookup.cached if isinstance(lookup, TagSignatures) else None

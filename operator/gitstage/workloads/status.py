"""Compose a ModelRegistry's status: what the registry says, what runs where, and conditions.

Pure and stable: the same inputs give the same status, so an idle registry costs no API write.
Only a condition whose status or reason changes gets a new lastTransitionTime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from weakref import WeakKeyDictionary

from gitstage.domain.registry.state import Artifact, RegistryState
from gitstage.domain.registry.views import Sort, latest_version, stage_view
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.plan import Hold
from gitstage.workloads.render import Serving

MAX_ARTIFACTS_IN_STATUS = 200


class SourceHealth(Protocol):
    """What the conditions read of the operator's view of the repository (feed.SourceView)."""

    @property
    def registry(self) -> object | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def error_reason(self) -> str | None: ...

    @property
    def permanent(self) -> bool: ...


class ObservedRollout(Protocol):
    """What the rollout state reads of an observed Deployment (kube.deployments)."""

    @property
    def generation(self) -> int: ...

    @property
    def observed_generation(self) -> int: ...

    @property
    def replicas(self) -> int | None: ...

    @property
    def total_replicas(self) -> int: ...

    @property
    def updated_replicas(self) -> int: ...

    @property
    def available_replicas(self) -> int: ...

    @property
    def progressing_reason(self) -> str | None: ...

    @property
    def pod_failure(self) -> str | None: ...


def registry_table(state: RegistryState, resolution: v1.Resolution) -> list[v1.ArtifactState]:
    """Per artifact: latest registered version and each stage's holder (as `gitstage show`)."""
    key = (resolution.registered_only, resolution.sort.value)
    rows = []
    for name, artifact in sorted(state.artifacts.items())[:MAX_ARTIFACTS_IN_STATUS]:
        # An artifact no tag changed is the same object from one read to the next
        # (adapters/git/incremental.py): its row is computed once, not on every reconcile.
        held = _ROWS.setdefault(artifact, {})
        row = held.get(key)
        if row is None:
            row = held[key] = artifact_state(name, artifact, resolution)
        rows.append(row)
    return rows


_ROWS: WeakKeyDictionary[Artifact, dict[tuple[bool, str], v1.ArtifactState]] = WeakKeyDictionary()


def artifact_state(name: str, artifact: Artifact, resolution: v1.Resolution) -> v1.ArtifactState:
    latest = latest_version(artifact)
    view = stage_view(
        artifact, registered_only=resolution.registered_only, sort=Sort(resolution.sort.value)
    )
    stages = []
    for stage, holders in sorted(view.items()):
        if not holders:
            continue
        vstage = holders[0]
        version = artifact.carrier_of(vstage)
        assignment = vstage.authoring_event
        stages.append(
            v1.StageState(
                stage=stage,
                version=vstage.version,
                commit=version.peeled_commit,
                tag=str(assignment.tag),
                assigned_at=assignment.time.isoformat(),
            )
        )
    return v1.ArtifactState(
        artifact=name,
        latest=latest.name if latest else None,
        deprecated=not artifact.is_active,
        stages=stages,
    )


def rfc3339(moment: datetime) -> str:
    """A status timestamp as Kubernetes writes them: UTC, seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str


def _kstatus(
    ready: bool | None, reason: str, message: str, *, reconciling: bool, stalled: bool
) -> list[ConditionUpdate]:
    """Ready, with Reconciling and Stalled as kstatus reads them: Reconciling=True is "in
    progress", Stalled=True is "failed, a human must act" (never both)."""
    return [
        ConditionUpdate("Ready", ready, reason, message),
        ConditionUpdate(
            "Reconciling",
            reconciling,
            reason if reconciling else "Settled",
            message if reconciling else "",
        ),
        ConditionUpdate(
            "Stalled", stalled, reason if stalled else "Settled", message if stalled else ""
        ),
    ]


@dataclass(frozen=True)
class Refusal:
    """A binding gitstage will not roll out as asked: a promotion policy broken
    (PolicyViolation), a pod the operator's pod policy forbids (PodPolicyViolation), or an
    apply its ServiceAccount may not make (Forbidden). Each needs a human: Stalled."""

    reason: str
    message: str


def merge_conditions(
    previous: list[v1.Condition],
    updates: list[ConditionUpdate],
    generation: int | None,
    now: str,
) -> list[v1.Condition]:
    """Keep a condition's lastTransitionTime unless its status or reason changed."""
    by_type = {c.type: c for c in previous}
    merged = []
    for update in updates:
        status = {True: "True", False: "False", None: "Unknown"}[update.status]
        before = by_type.get(update.type)
        unchanged = before is not None and (before.status, before.reason) == (status, update.reason)
        merged.append(
            v1.Condition(
                type=update.type,
                status=status,
                reason=update.reason,
                message=update.message,
                last_transition_time=before.last_transition_time if unchanged and before else now,
                observed_generation=generation,
            )
        )
    return merged


def summarize(deployments: list[v1.DeploymentState]) -> str:
    """The one-line `Status` printer column."""
    if not deployments:
        return "no deployments"
    parts = []
    for d in deployments:
        where = f"{d.artifact}#{d.stage}" if d.stage else d.artifact
        version = d.observed_version or "-"
        parts.append(f"{d.name}={where}@{version} ({d.rollout})")
    return ", ".join(parts)


def rollout_state(
    desired: Serving | None,
    observed: ObservedRollout | None,
    running: Serving | None,
    hold: Hold | None,
) -> str:
    """Pending, Progressing, Complete, Failed or Held: the `rollout` of a DeploymentState."""
    if observed is None:
        return "Held" if hold else "Pending"
    if observed.progressing_reason == "ProgressDeadlineExceeded" or observed.pod_failure:
        return "Failed"
    settled = observed.observed_generation >= observed.generation
    wanted = observed.replicas if observed.replicas is not None else 1
    # As `kubectl rollout status`: every pod updated and available, no old pod left (ready
    # counts include old pods, so they alone would call a half-done rollout complete).
    complete = (
        settled
        and observed.updated_replicas == wanted
        and observed.total_replicas == observed.updated_replicas
        and observed.available_replicas >= wanted
        and (desired is None or (running is not None and running.commit == desired.commit))
    )
    if hold:
        return "Held"
    return "Complete" if complete else "Progressing"


def condition_updates(
    spec: v1.ModelRegistrySpec,
    source: SourceHealth | None,
    states: list[v1.DeploymentState],
    refusals: list[Refusal],
) -> list[ConditionUpdate]:
    """Ready, Reconciling and Stalled with kstatus semantics (what `kubectl wait`, Flux health
    checks and Argo CD read): Ready=Unknown and Reconciling=True while in progress;
    Stalled=True on a failure that needs a human; neither when settled."""
    if spec.suspend:
        return _kstatus(
            False, "Suspended", "reconciliation is suspended", reconciling=False, stalled=False
        )
    if source is None or (source.registry is None and source.error is None):
        return _kstatus(
            None, "Progressing", "waiting for the first poll", reconciling=True, stalled=False
        )
    if source.error is not None:
        reason = source.error_reason or "SourceUnavailable"
        # Transient (a server down): still retrying; permanent (credentials, host key): a human.
        permanent = source.permanent
        return _kstatus(False, reason, source.error, reconciling=not permanent, stalled=permanent)
    return _workload_conditions(states, refusals)


def _workload_conditions(
    states: list[v1.DeploymentState], refusals: list[Refusal]
) -> list[ConditionUpdate]:
    if refusals:
        # First: a refused promotion (a forged or premature tag, a forbidden pod) is what an
        # operator must see.
        message = "; ".join(refusal.message for refusal in refusals)
        return _kstatus(False, refusals[0].reason, message, reconciling=False, stalled=True)
    failed = [d for d in states if d.rollout == "Failed"]
    if failed:
        message = "; ".join(
            f"{d.name}: {d.message or 'rollout exceeded its progress deadline'}" for d in failed
        )
        reason = "FetchFailed" if any(d.message for d in failed) else "RolloutFailed"
        return _kstatus(False, reason, message, reconciling=False, stalled=True)
    progressing = [d for d in states if d.rollout in ("Progressing", "Pending")]
    if progressing:
        names = ", ".join(d.name for d in progressing)
        return _kstatus(
            None, "Progressing", f"rolling out {names}", reconciling=True, stalled=False
        )
    held = [d for d in states if d.rollout == "Held" or d.message]
    if held:
        # A deprecated artifact or an empty stage: the registry names no version to serve, so
        # nothing will progress until someone assigns one or changes the binding.
        message = "; ".join(f"{d.name}: {d.message}" for d in held)
        return _kstatus(False, "Held", message, reconciling=False, stalled=True)
    return _kstatus(True, "Serving", summarize(states), reconciling=False, stalled=False)

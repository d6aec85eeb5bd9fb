"""Compose a ModelRegistry's status: what the registry says, what runs where, and conditions.

Pure and stable: the same inputs give the same status, so an idle registry costs no API write.
Only a condition whose status or reason changes gets a new lastTransitionTime.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitstage.domain.state import RegistryState
from gitstage.domain.views import Sort, latest_version, stage_view
from gitstage.resources import v1alpha1 as v1

MAX_ARTIFACTS_IN_STATUS = 200


def registry_table(state: RegistryState, resolution: v1.Resolution) -> list[v1.ArtifactState]:
    """Per artifact: latest registered version and each stage's holder (as `gitstage show`)."""
    rows = []
    for name, artifact in sorted(state.artifacts.items())[:MAX_ARTIFACTS_IN_STATUS]:
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
        rows.append(
            v1.ArtifactState(
                artifact=name,
                latest=latest.name if latest else None,
                deprecated=not artifact.is_active,
                stages=stages,
            )
        )
    return rows


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool
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
        status = "True" if update.status else "False"
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

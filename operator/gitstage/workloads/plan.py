"""What each Deployment binding should serve, from the registry state (GTO's stage view).

A binding resolves to a Serving (roll to this version), or to a Hold (keep what runs, say why):
GTO semantics never delete a serving workload when a stage empties or an artifact is deprecated.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gitstage.domain.state import Artifact, RegistryState
from gitstage.domain.views import Sort, get_versions, stage_view
from gitstage.resources.v1alpha1 import DeploymentBinding, Resolution
from gitstage.workloads.render import Serving


class HoldReason(Enum):
    UNKNOWN_ARTIFACT = "UnknownArtifact"
    DEPRECATED = "ArtifactDeprecated"
    EMPTY_STAGE = "StageEmpty"
    UNKNOWN_VERSION = "VersionNotFound"


@dataclass(frozen=True)
class Hold:
    reason: HoldReason
    message: str


Decision = Serving | Hold


def decide(state: RegistryState, binding: DeploymentBinding, resolution: Resolution) -> Decision:
    artifact = state.artifacts.get(binding.artifact)
    if artifact is None:
        return Hold(
            HoldReason.UNKNOWN_ARTIFACT, f"artifact {binding.artifact!r} is not in the registry"
        )
    if not artifact.is_active:
        return Hold(HoldReason.DEPRECATED, f"artifact {binding.artifact!r} is deprecated")
    if binding.version is not None:
        return _pinned(artifact, binding.version)
    return _staged(artifact, str(binding.stage), resolution)


def _staged(artifact: Artifact, stage: str, resolution: Resolution) -> Decision:
    view = stage_view(
        artifact,
        registered_only=resolution.registered_only,
        sort=Sort(resolution.sort.value),
    )
    holders = view.get(stage)
    if not holders:
        return Hold(
            HoldReason.EMPTY_STAGE, f"no version of {artifact.name!r} is in stage {stage!r}"
        )
    vstage = holders[0]
    version = artifact.carrier_of(vstage)
    assignment = vstage.authoring_event
    return Serving(
        artifact=artifact.name,
        version=version.name,
        commit=version.peeled_commit,
        stage=stage,
        tag=assignment.tag,
        assigned_at=assignment.time.isoformat(),
    )


def _pinned(artifact: Artifact, name: str) -> Decision:
    matches = [v for v in get_versions(artifact) if v.name == name]
    if not matches:
        return Hold(
            HoldReason.UNKNOWN_VERSION, f"version {name} of {artifact.name!r} is not registered"
        )
    version = matches[0]
    registration = version.authoring_event
    return Serving(
        artifact=artifact.name,
        version=version.name,
        commit=version.peeled_commit,
        stage=None,
        tag=registration.tag,
        assigned_at=registration.time.isoformat(),
    )

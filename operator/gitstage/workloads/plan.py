"""What each Deployment binding should serve, from the registry state (GTO's stage view).

A binding resolves to a Serving (roll to this version), to a Hold (keep what runs, say why),
or, under a promotion policy, to a Refused: GTO semantics never delete a serving workload when
a stage empties or an artifact is deprecated, and a stage holder whose assignment breaks the
policy is never rolled out.

Under a policy, a stage is resolved as if the refused assignment tags did not exist: the newest
compliant holder serves (usually the version already running: a forged tag on top of the
stage changes nothing), and when no assignment to the stage complies, whatever runs keeps
running. The choice depends only on git, never on what the cluster happens to run, so it
survives operator restarts and new ModelRegistries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gitstage.domain.policy.rules import AssignmentViolation, PolicyEvaluator, violation_of
from gitstage.domain.registry.state import Artifact, RegistryState, VStage, without_tags
from gitstage.domain.registry.views import Sort, get_versions, stage_view
from gitstage.resources.v1alpha1 import DeploymentBinding, Resolution
from gitstage.workloads.render import Serving


class HoldReason(Enum):
    UNKNOWN_ARTIFACT = "UnknownArtifact"
    DEPRECATED = "ArtifactDeprecated"
    EMPTY_STAGE = "StageEmpty"
    UNKNOWN_VERSION = "VersionNotFound"
    POLICY_VIOLATION = "PolicyViolation"


@dataclass(frozen=True)
class Hold:
    reason: HoldReason
    message: str


@dataclass(frozen=True)
class Refused:
    """The stage's holder (by GTO) was assigned in breach of the promotion policy.

    `violations` lists the refused assignments, the GTO holder's first; `fallback` is the
    newest compliant holder to serve instead, or None: then whatever runs keeps running.
    """

    stage: str
    violations: tuple[AssignmentViolation, ...]
    fallback: Serving | None

    @property
    def message(self) -> str:
        refused = "; ".join(str(v) for v in self.violations)
        if self.fallback is None:
            return f"{refused}; no assignment to '{self.stage}' complies with the policy"
        return f"{refused}; serving {self.fallback.version} ({self.fallback.tag}) instead"

    def as_hold(self) -> Hold:
        return Hold(HoldReason.POLICY_VIOLATION, self.message)


Decision = Serving | Hold | Refused


def decide(
    state: RegistryState,
    binding: DeploymentBinding,
    resolution: Resolution,
    policy: PolicyEvaluator | None = None,
) -> Decision:
    """`policy` (the registry's promotion policy, if any) applies to stage bindings only."""
    artifact = state.artifacts.get(binding.artifact)
    if artifact is None:
        return Hold(
            HoldReason.UNKNOWN_ARTIFACT, f"artifact {binding.artifact!r} is not in the registry"
        )
    if binding.version is not None:
        if not artifact.is_active:
            return _deprecated(artifact)
        return _pinned(artifact, binding.version)
    stage = str(binding.stage)
    if policy is None:
        return _staged(artifact, stage, resolution)[0]
    return _policed(artifact, stage, resolution, policy)


def _deprecated(artifact: Artifact) -> Hold:
    return Hold(HoldReason.DEPRECATED, f"artifact {artifact.name!r} is deprecated")


def _staged(
    artifact: Artifact, stage: str, resolution: Resolution
) -> tuple[Serving | Hold, VStage | None]:
    """GTO's answer, and the holder it comes from."""
    if not artifact.is_active:
        return _deprecated(artifact), None
    view = stage_view(
        artifact,
        registered_only=resolution.registered_only,
        sort=Sort(resolution.sort.value),
    )
    holders = view.get(stage)
    if not holders:
        message = f"no version of {artifact.name!r} is in stage {stage!r}"
        return Hold(HoldReason.EMPTY_STAGE, message), None
    vstage = holders[0]
    version = artifact.carrier_of(vstage)
    assignment = vstage.authoring_event
    serving = Serving(
        artifact=artifact.name,
        version=version.name,
        commit=version.peeled_commit,
        stage=stage,
        tag=assignment.tag,
        assigned_at=assignment.time.isoformat(),
    )
    return serving, vstage


def _policed(
    artifact: Artifact, stage: str, resolution: Resolution, policy: PolicyEvaluator
) -> Decision:
    """GTO's answer while its holder complies; else look again without the refused tags."""
    refused: list[AssignmentViolation] = []
    current = artifact
    while True:
        decision, vstage = _staged(current, stage, resolution)
        if vstage is None:
            return Refused(stage, tuple(refused), None) if refused else decision
        assignment = vstage.authoring_event
        violation = policy.violation(assignment)
        if violation is None:
            if not refused or not isinstance(decision, Serving):
                return decision
            return Refused(stage, tuple(refused), decision)
        refused.append(violation_of(assignment, violation))
        current = without_tags(artifact, {v.tag for v in refused})


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

"""Which commit a `fetch` or `load` means: a stage, a version, a revision, or the latest version.

    Selector(stage="prod")      as `gto show NAME#prod` (latest assignment wins)
    Selector(version="v1.2.0")  that registered version
    Selector(rev="3f6c0e1")     a commit or tag as is (no registry lookup)
    Selector()                  `gto show NAME@latest`: the highest registered version

What was resolved is kept (`Resolution`) so a manifest records it, not what was asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitstage.domain.registry.state import Artifact, RegistryState
from gitstage.domain.registry.views import (
    Sort,
    find_artifact,
    get_versions,
    latest_version,
    stage_view,
)


class SelectionError(LookupError):
    """Nothing matches the selector; the message says what is missing, in one line."""


class ConflictingSelectorsError(ValueError):
    """More than one of stage, version, rev and latest."""


@dataclass(frozen=True)
class Selector:
    stage: str | None = None
    version: str | None = None
    rev: str | None = None

    def __post_init__(self) -> None:
        given = [
            f"{key}={value!r}"
            for key, value in (("stage", self.stage), ("version", self.version), ("rev", self.rev))
            if value is not None
        ]
        if len(given) > 1:
            raise ConflictingSelectorsError(f"give one of stage, version or rev, not {given}")


@dataclass(frozen=True)
class Resolution:
    """A commit and, when the registry chose it, the version, stage and tags that did."""

    artifact: str
    commit: str
    version: str | None = None
    stage: str | None = None
    registration_tag: str | None = None
    assignment_tag: str | None = None


def resolve(
    state: RegistryState, name: str, selector: Selector, sort: Sort = Sort.TIMESTAMP
) -> Resolution:
    """Resolve `selector` for artifact `name`; raises SelectionError or ArtifactNotFoundError."""
    if selector.rev is not None:
        return Resolution(name, selector.rev)
    artifact = find_artifact(state, name)
    if not artifact.is_active:
        raise SelectionError(f"artifact {name!r} is deprecated")
    if selector.stage is not None:
        return _in_stage(artifact, selector.stage, sort)
    if selector.version is not None:
        matches = [v for v in get_versions(artifact) if v.name == selector.version]
        if not matches:
            raise SelectionError(f"version {selector.version} of {name!r} is not registered")
        chosen = matches[0]
    else:
        latest = latest_version(artifact)
        if latest is None:
            raise SelectionError(f"artifact {name!r} has no registered version")
        chosen = latest
    tag = chosen.authoring_event.tag if chosen.is_registered else None
    return Resolution(name, chosen.peeled_commit, chosen.name, registration_tag=tag)


def _in_stage(artifact: Artifact, stage: str, sort: Sort) -> Resolution:
    holders = stage_view(artifact, sort=sort).get(stage)
    if not holders:
        raise SelectionError(f"no version of {artifact.name!r} is in stage {stage!r}")
    vstage = holders[0]
    version = artifact.carrier_of(vstage)
    return Resolution(
        artifact.name,
        version.peeled_commit,
        vstage.version,
        stage,
        version.authoring_event.tag if version.is_registered else None,
        str(vstage.authoring_event.tag),
    )

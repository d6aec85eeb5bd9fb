"""gitstage's Python API: GTO-exact answers from a repository path.

from gitstage import api
holder = api.find_version_in_stage("path/to/repo", "churn", "prod")
holder.version, holder.commit, holder.registration_tag, holder.assignment_tag
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gitstage.adapters.git.reader import Registry, read_registry
from gitstage.domain.gto_json import registry_document, versions_document
from gitstage.domain.index import ArtifactAnnotation
from gitstage.domain.state import Version, VStage
from gitstage.domain.tags import parse_shortcut
from gitstage.domain.views import (
    Sort,
    ViewOptions,
    find_artifact,
    get_versions,
    latest_version,
    list_versions,
    select_versions,
    stage_view,
)

RepoPath = str | os.PathLike[str]


def show(
    repo: RepoPath = ".",
    name: str | None = None,
    *,
    registered_only: bool = False,
    deprecated: bool = False,
    assignments_per_version: int = -1,
    versions_per_stage: int = 1,
    sort: str = "timestamp",
) -> Any:
    """The document `gto show --json [NAME]` prints, as Python data."""
    options = ViewOptions.from_flags(
        registered_only, deprecated, assignments_per_version, versions_per_stage, sort
    )
    registry = read_registry(repo)
    if name is None:
        return registry_document(registry.state, options, registry.config.stages)
    return versions_document(show_versions(registry, name, options))


def show_versions(registry: Registry, name: str, options: ViewOptions) -> list[Any]:
    shortcut = parse_shortcut(name)
    rows = list_versions(find_artifact(registry.state, shortcut.name), options)
    return select_versions(
        rows, latest=shortcut.latest, version=shortcut.version, stage=shortcut.stage
    )


@dataclass(frozen=True)
class StageHolder:
    """The version holding a stage, with the tags that put it there."""

    artifact: str
    stage: str
    version: str
    commit: str
    registration_tag: str | None
    assignment_tag: str
    assigned_at: datetime


def find_version_in_stage(
    repo: RepoPath,
    name: str,
    stage: str,
    *,
    sort: str = "timestamp",
    registered_only: bool = False,
) -> StageHolder | None:
    """Who holds `stage`: by default as `gto show NAME#STAGE` answers (latest assignment wins).

    `sort="semver"` answers as `gto.api.find_versions_in_stage` does (highest version wins).
    """
    artifact = find_artifact(read_registry(repo).state, name)
    view = stage_view(artifact, registered_only=registered_only, sort=Sort(sort))
    holders = view.get(stage)
    return holder_of(holders[0], artifact.carrier_of(holders[0])) if holders else None


def holder_of(vstage: VStage, version: Version) -> StageHolder:
    assignment = vstage.authoring_event
    return StageHolder(
        artifact=vstage.artifact,
        stage=vstage.stage,
        version=vstage.version,
        commit=vstage.commit,
        registration_tag=version.authoring_event.tag if version.is_registered else None,
        assignment_tag=str(assignment.tag),
        assigned_at=assignment.time.to_datetime(),
    )


@dataclass(frozen=True)
class VersionInfo:
    artifact: str
    version: str
    commit: str
    registration_tag: str | None


def latest(repo: RepoPath, name: str, *, registered: bool = True) -> VersionInfo | None:
    """The highest active version (`gto show NAME@latest` with registered versions only)."""
    artifact = find_artifact(read_registry(repo).state, name)
    version = latest_version(artifact, registered_only=registered)
    if version is None:
        return None
    tag = version.authoring_event.tag if version.is_registered else None
    return VersionInfo(version.artifact, version.name, version.commit, tag)


def describe(repo: RepoPath, name: str, rev: str | None = None) -> ArtifactAnnotation | None:
    """artifacts.yaml's entry for NAME at REV (HEAD by default), or at a shortcut's commit."""
    shortcut = parse_shortcut(name)
    if shortcut.is_shortcut:
        if rev is not None:
            raise ValueError("Either specify revision or use naming shortcut.")
        rows = show_versions(read_registry(repo), name, ViewOptions())
        if not rows:
            return None
        if len(rows) > 1:
            raise ValueError(f"Ambiguous naming shortcut {name!r}: multiple variants found.")
        rev = rows[0].version.commit
    from gitstage.adapters.git.describe import annotation_at  # pygit2: only when describing

    return annotation_at(repo, shortcut.name, rev)


def fetch(
    name: str,
    *,
    repo: RepoPath,
    stage: str | None = None,
    version: str | None = None,
    dest: RepoPath | None = None,
    sort: str = "timestamp",
) -> Path:
    """The bytes of NAME at a stage or version, fetched at its commit (cached by commit).

    model_path = api.fetch("churn", repo="https://git.example/registry.git", stage="prod")
    """
    if (stage is None) == (version is None):
        raise ValueError("give exactly one of stage= or version=")
    registry = registry_at(repo)
    artifact = find_artifact(registry.state, name)
    if stage is not None:
        view = stage_view(artifact, sort=Sort(sort))
        holders = view.get(stage)
        if not holders:
            raise LookupError(f"no version of {name!r} is in stage {stage!r}")
        chosen, commit = holders[0].version, artifact.carrier_of(holders[0]).peeled_commit
    else:
        matches = [v for v in get_versions(artifact) if v.name == version]
        if not matches:
            raise LookupError(f"version {version} of {name!r} is not registered")
        chosen, commit = matches[0].name, matches[0].peeled_commit
    from gitstage.fetching import fetch_artifact

    return fetch_artifact(str(repo), commit, name, dest, version=chosen, stage=stage)


def registry_at(repo: RepoPath) -> Registry:
    """A local repository is read in place; a URL goes through a persistent mirror."""
    if Path(repo).exists():
        return read_registry(repo)
    from gitstage.adapters.git.remote import mirror_registry

    return mirror_registry(str(repo))

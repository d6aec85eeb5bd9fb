"""gitstage's Python API: GTO-exact answers from a repository path, a bare repository or a URL
(https, ssh, file; read through the remote mirror, credentials as `gitstage fetch` takes them).

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
from gitstage.adapters.mirror.locate import open_for_read, readable_path
from gitstage.domain.registry.files import INDEX_FILE
from gitstage.domain.registry.gto_json import registry_document, versions_document
from gitstage.domain.registry.index import ArtifactAnnotation
from gitstage.domain.registry.state import Version, VStage
from gitstage.domain.registry.tags import parse_shortcut
from gitstage.domain.registry.views import (
    Sort,
    ViewOptions,
    find_artifact,
    latest_version,
    stage_view,
)
from gitstage.reading import show_versions

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
    registry = registry_at(repo)
    if name is None:
        return registry_document(registry.state, options, registry.config.stages)
    return versions_document(show_versions(registry, name, options))


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
    artifact = find_artifact(registry_at(repo).state, name)
    if not artifact.is_active:
        return None  # deprecated: `gto show NAME#STAGE` shows nothing
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
    artifact = find_artifact(registry_at(repo).state, name)
    version = latest_version(artifact, registered_only=registered)
    if version is None:
        return None
    tag = version.authoring_event.tag if version.is_registered else None
    return VersionInfo(version.artifact, version.name, version.commit, tag)


def describe(repo: RepoPath, name: str, rev: str | None = None) -> ArtifactAnnotation | None:
    """artifacts.yaml's entry for NAME at REV (HEAD by default), or at a shortcut's commit."""
    shortcut = parse_shortcut(name)
    target = open_for_read(repo)
    if shortcut.is_shortcut:
        if rev is not None:
            raise ValueError("Either specify revision or use naming shortcut.")
        rows = show_versions(read_registry(target.path), name, ViewOptions())
        if not rows:
            return None
        if len(rows) > 1:
            raise ValueError(f"Ambiguous naming shortcut {name!r}: multiple variants found.")
        rev = rows[0].version.commit
    from gitstage.adapters.git.describe import annotation_at  # pygit2: only when describing

    if target.mirror is not None:
        target.mirror.ensure_blob(rev or "HEAD", INDEX_FILE)
    return annotation_at(target.path, shortcut.name, rev)


def fetch(
    name: str,
    *,
    repo: RepoPath,
    stage: str | None = None,
    version: str | None = None,
    rev: str | None = None,
    path: str | None = None,
    dest: RepoPath | None = None,
    sort: str = "timestamp",
) -> Path:
    """The bytes of NAME at a stage, a version, a revision, or (none given) its latest version,
    fetched at that commit into the cache (once per commit) or `dest`.

    model_path = api.fetch("churn", repo="https://git.example/registry.git", stage="prod")
    """
    from gitstage.domain.registry.selection import Selector
    from gitstage.fetching import fetch_selected

    selected = fetch_selected(
        name,
        os.fspath(repo),
        Selector(stage, version, rev),
        path=path,
        dest=None if dest is None else Path(dest),
        sort=sort,
    )
    return selected.result.location


def load(
    name: str,
    *,
    repo: RepoPath,
    stage: str | None = None,
    version: str | None = None,
    rev: str | None = None,
    path: str | None = None,
    loader: str | None = None,
    require_signed: bool = False,
) -> Any:
    """The model object of NAME (like `mlem.api.load`): fetched as `fetch` does, then loaded.

    WARNING: pickle and joblib files run code when loaded. Load only from registries you trust;
    `require_signed=True` (with `stage=`) refuses a stage whose assignment tag is not signed by a
    key the registry trusts (the promotion policy's key files at HEAD).

    The loader: `loader=`, else artifacts.yaml's `custom.gitstage.loader`, else its `type` when a
    loader has that name, else the file extension (.pkl/.pickle, .joblib, and `gitstage.loaders`
    entry points).
    """
    from gitstage.domain.registry.selection import Selector
    from gitstage.fetching import fetch_selected
    from gitstage.loading import load_file, require_signed_promotion

    signed_tag = None
    if require_signed:
        if stage is None:
            raise ValueError("require_signed needs stage=: only a stage assignment is signed")
        signed_tag = require_signed_promotion(os.fspath(repo), name, stage)
    selected = fetch_selected(name, os.fspath(repo), Selector(stage, version, rev), path=path)
    if signed_tag is not None and selected.resolution.assignment_tag != signed_tag:
        raise RuntimeError(f"stage {stage!r} of {name!r} moved while loading; load again")
    return load_file(selected.result.location, selected.annotation, loader)


def registry_at(repo: RepoPath) -> Registry:
    """A local repository is read in place; a URL through the persistent remote mirror."""
    return read_registry(readable_path(repo))

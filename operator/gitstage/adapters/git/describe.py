"""artifacts.yaml at a revision (`gto.api.describe`)."""

from __future__ import annotations

import os

import pygit2

from gitstage.adapters.git.reader import GitCommitSource, read_config
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.domain.registry.index import ArtifactAnnotation


def annotation_at(
    path: str | os.PathLike[str], name: str, rev: str | None = None
) -> ArtifactAnnotation | None:
    repo = open_repository(path)
    source = GitCommitSource(repo, read_config(repo).index)
    commit = resolve_commit(repo, rev or "HEAD")
    index = source.index(commit)
    return index.get(name) if index else None


def resolve_commit(repo: pygit2.Repository, rev: str) -> str:
    try:
        return str(repo.revparse_single(rev).peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise RepositoryError(f"revision not found: {rev}") from None

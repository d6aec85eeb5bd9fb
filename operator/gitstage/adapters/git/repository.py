"""Open a repository with libgit2: the write, policy and check paths, and the layouts (bare
repositories, odd work trees) that the file reader (refdb.py) leaves to libgit2's discovery.

pygit2 is imported only when a repository is opened: a warm `gitstage show --json` never is.
"""

from __future__ import annotations

import os

from gitstage.adapters.git.refdb import GitDirs, RepositoryError, common_dir_of

TYPE_CHECKING = False  # typing's own costs an import (see reading.py); mypy reads it as True
if TYPE_CHECKING:
    import pygit2

__all__ = ["RepositoryError", "dirs_from_libgit2", "open_repository"]


def open_repository(path: str | os.PathLike[str]) -> pygit2.Repository:
    import pygit2

    from gitstage.domain.repo_urls import redact  # `re` and urllib: not on the warm fast path

    location = pygit2.discover_repository(str(path))
    if location is None:
        raise RepositoryError(f"not a git repository: {redact(str(path))}")
    try:
        return pygit2.Repository(location)
    except pygit2.GitError as error:
        raise RepositoryError(f"cannot open git repository {redact(str(path))}: {error}") from None


def dirs_from_libgit2(path: str | os.PathLike[str]) -> GitDirs:
    """Bare repositories and other layouts the file reader leaves to libgit2's discovery."""
    repo = open_repository(path)
    git_dir = os.path.normpath(repo.path)
    common = common_dir_of(git_dir)
    if os.path.isdir(os.path.join(common, "reftable")):
        raise RepositoryError(f"cannot read git repository {path}: reftable refs are not supported")
    return GitDirs(git_dir, common, repo.workdir)

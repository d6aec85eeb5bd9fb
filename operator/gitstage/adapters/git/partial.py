"""A remote registry without a full clone: a temporary bare repository holding the remote's tags
and default branch as commits and trees only (`--filter=blob:none`), plus the few blobs GTO reads
(`.gto`, artifacts.yaml at versions' commits, the policy). Writes happen there and are pushed.

Servers that do not support filters send blobs too; that only costs bandwidth.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitstage.adapters.git.credentials import GitCredentials, git_environment
from gitstage.adapters.git.git_process import failure_reason
from gitstage.domain.repo_urls import redact, split_userinfo

DEFAULT_BRANCH_REF = "refs/heads/gitstage-default"
_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
FETCH_TIMEOUT_SECONDS = 600


class RemoteError(RuntimeError):
    """The remote could not be read; one line, without credentials."""


@dataclass
class RemoteRepository:
    """A partial copy of a remote registry; `push_env` carries credentials for pushing back."""

    url: str
    git_dir: Path
    repo: pygit2.Repository
    env: dict[str, str]
    credentials: GitCredentials

    def ensure_blobs(self, paths: Iterable[tuple[str, str]]) -> None:
        """Fetch the blobs at (commit, path) that are missing, in one request."""
        missing: list[str] = []
        for commit, path in paths:
            oid = _blob_id(self.repo, commit, path)
            if oid is not None and oid not in self.repo and str(oid) not in missing:
                missing.append(str(oid))
        if missing:
            self.git(
                "-c",
                "fetch.negotiationAlgorithm=noop",
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--recurse-submodules=no",
                "--filter=blob:none",
                "origin",
                *missing,
            )

    def fetch_rev(self, rev: str) -> None:
        """Bring a branch, tag or commit that the default fetch did not (no blobs): `register
        NAME REV -r URL` for any REV of the remote. Unknown names are left to the caller."""
        if rev.startswith("-"):
            return
        refspec = rev if _FULL_SHA.match(rev) else f"+refs/heads/{rev}:refs/heads/{rev}"
        try:
            self.git("fetch", "--quiet", "--filter=blob:none", "--no-tags", "origin", refspec)
        except RemoteError:
            return  # not a branch or commit there: "unknown Git revision", as before
        self.repo = pygit2.Repository(str(self.git_dir))

    def git(self, *args: str) -> None:
        try:
            result = subprocess.run(
                ["git", *args],
                cwd=self.git_dir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=FETCH_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"git {args[0]} from {redact(self.url)} timed out") from None
        if result.returncode != 0:
            reason = failure_reason(result.stderr)
            raise RemoteError(f"cannot read {redact(self.url)}: {redact(reason)}")


def _blob_id(repo: pygit2.Repository, commit: str, path: str) -> pygit2.Oid | None:
    try:
        entry = repo.get(commit).peel(pygit2.Commit).tree[path]  # type: ignore[union-attr]
    except (KeyError, ValueError, AttributeError, pygit2.GitError):
        return None
    return entry.id if entry.type_str == "blob" else None


@contextmanager
def partial_fetch(
    url: str,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[RemoteRepository]:
    """Fetch `url`'s tags and default branch without blobs into a temporary bare repository."""
    env_base = os.environ if environ is None else environ
    clean, user, password = split_userinfo(url)
    credentials = GitCredentials.from_env(env_base, user, password)
    with tempfile.TemporaryDirectory(prefix="gitstage-remote-") as scratch:
        git_dir = Path(scratch) / "registry.git"
        pygit2.init_repository(str(git_dir), bare=True)
        env = git_environment(env_base, credentials, Path(scratch), url=clean)
        remote = RemoteRepository(clean, git_dir, pygit2.Repository(str(git_dir)), env, credentials)
        remote.git("remote", "add", "origin", clean)
        if progress is not None:
            progress(f"Fetching tags and the default branch of {redact(clean)} (no blobs)")
        remote.git(
            "fetch",
            "--quiet",
            "--filter=blob:none",
            "--no-tags",
            "origin",
            f"+HEAD:{DEFAULT_BRANCH_REF}",
            "+refs/tags/*:refs/tags/*",
        )
        remote.git("symbolic-ref", "HEAD", DEFAULT_BRANCH_REF)
        # Reopen: the fetch wrote refs and a promisor pack behind libgit2's back.
        remote.repo = pygit2.Repository(str(git_dir))
        yield remote

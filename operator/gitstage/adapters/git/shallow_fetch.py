"""Fetch exactly one commit, shallowly, with the git CLI (`git init --bare` + `fetch --depth 1`).

The git CLI is what an init container has, speaks every transport and server quirk, and takes
credentials from GIT_ASKPASS (see credentials.py). Failures become one-line, redacted errors.
Every git call ends by the fetch's deadline, and an HTTP transfer ends after the stall timeout
without data (domain/fetch/limits.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitstage.adapters.git.commit_tree import CommitTree
from gitstage.adapters.git.credentials import (
    REDIRECT_REFUSED,
    GitCredentials,
    git_environment,
    refused_redirect,
)
from gitstage.adapters.git.git_process import (
    GitMissingError,
    failure_reason,
    run_git,
    stall_environment,
)
from gitstage.domain.fetch.errors import (
    BadInputError,
    FetchError,
    NotFoundError,
    TransportError,
)
from gitstage.domain.fetch.limits import Deadline
from gitstage.domain.registry.names import is_hexsha
from gitstage.domain.repo_urls import redact

_STALL_HINT = "operation too slow"  # curl's low-speed abort, as git reports it
_AUTH_HINTS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "http 401",
    "http 403",
    "access denied",
)
_REV_HINTS = (
    "couldn't find remote ref",
    "not our ref",
    "no such remote ref",
    "unadvertised object",
    "remote error: upload-pack",
)
_REPO_HINTS = ("does not appear to be a git repository", "not found", "not a git repository")


@dataclass(frozen=True)
class FetchedCommit:
    url: str
    tree: CommitTree
    local_path: Path | None

    @property
    def commit(self) -> str:
        return self.tree.commit


def fetch_commit(
    url: str,
    rev: str,
    workdir: Path,
    *,
    credentials: GitCredentials | None,
    environ: Mapping[str, str],
    deadline: Deadline | None = None,
) -> FetchedCommit:
    """Fetch `rev` (a full commit SHA, or a tag or branch name) of `url` into a new bare repo."""
    if url.startswith("-") or not url.strip():
        raise BadInputError(f"invalid repository {url!r}")
    local = Path(url).resolve() if is_local_path(url) else None
    source = str(local) if local is not None else url
    if local is not None and not local.exists():
        raise NotFoundError(f"repository {url} does not exist")
    gitdir = Path(workdir) / f"git-{len(list(workdir.glob('git-*')))}"
    deadline = deadline or Deadline()
    env = _environment(environ, credentials, workdir, source, deadline)
    _git(["init", "--bare", "-q", str(gitdir)], env, url, rev, deadline)
    _git(
        [
            "-C",
            str(gitdir),
            "fetch",
            "-q",
            "--depth",
            "1",
            "--no-tags",
            "--end-of-options",
            source,
            rev,
        ],
        env,
        url,
        rev,
        deadline,
    )
    repo = pygit2.Repository(str(gitdir))
    tree = CommitTree(repo, _fetch_head(gitdir))
    if is_hexsha(rev) and tree.commit != rev.lower():
        raise NotFoundError(f"revision {rev} of {redact(url)} is not a commit")
    return FetchedCommit(url, tree, local)


def _fetch_head(gitdir: Path) -> str:
    """The object fetched: the first field of FETCH_HEAD's only line."""
    text = (gitdir / "FETCH_HEAD").read_text(encoding="utf-8")
    return text.split(maxsplit=1)[0]


def _environment(
    environ: Mapping[str, str],
    credentials: GitCredentials | None,
    workdir: Path,
    source: str,
    deadline: Deadline,
) -> dict[str, str]:
    return {
        **git_environment(environ, credentials, workdir, url=source),
        **stall_environment(deadline.stall),
    }


def _git(args: list[str], env: dict[str, str], url: str, rev: str, deadline: Deadline) -> None:
    what = f"git fetch from {redact(url)}"
    try:
        result = run_git(args, env=env, timeout=deadline.remaining(what))
    except GitMissingError as error:
        raise FetchError(str(error)) from None
    except subprocess.TimeoutExpired:
        raise deadline.expired_error(what) from None
    if result.returncode != 0:
        raise _classify(result.stderr, url, rev)


def _classify(stderr: str, url: str, rev: str) -> FetchError:
    text = stderr.lower()
    shown = redact(url)
    if any(hint in text for hint in _AUTH_HINTS):
        return TransportError(f"authentication failed for {shown}")
    if any(hint in text for hint in _REV_HINTS):
        return NotFoundError(f"revision {rev} not found in {shown}")
    if any(hint in text for hint in _REPO_HINTS):
        return NotFoundError(f"repository {shown} not found")
    if refused_redirect(stderr):
        return TransportError(f"git fetch from {shown}: {REDIRECT_REFUSED}")
    if _STALL_HINT in text:
        return TransportError(f"git fetch from {shown}: no data for the stall timeout (stalled)")
    return TransportError(f"git fetch from {shown} failed: {redact(failure_reason(stderr))}")


def remote_refs(
    url: str,
    *,
    credentials: GitCredentials | None,
    environ: Mapping[str, str],
    workdir: Path,
    deadline: Deadline | None = None,
) -> dict[str, str]:
    """Branches and tags of `url` (`refs/heads/...`, `refs/tags/...` -> object), one listing."""
    if url.startswith("-") or not url.strip():
        raise BadInputError(f"invalid repository {url!r}")
    local = Path(url).resolve() if is_local_path(url) else None
    source = str(local) if local is not None else url
    deadline = deadline or Deadline()
    env = _environment(environ, credentials, workdir, source, deadline)
    what = f"git ls-remote {redact(url)}"
    args = ["ls-remote", "--heads", "--tags", "--end-of-options", source]
    try:
        result = run_git(args, env=env, timeout=deadline.remaining(what))
    except GitMissingError as error:
        raise FetchError(str(error)) from None
    except subprocess.TimeoutExpired:
        raise deadline.expired_error(what) from None
    if result.returncode != 0:
        raise _classify(result.stderr, url, "")
    refs: dict[str, str] = {}
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.endswith("^{}"):
            refs[ref] = sha
    return refs


def is_local_path(url: str) -> bool:
    """A filesystem path rather than a URL or scp-like `host:path`."""
    if "://" in url:
        return False
    head = url.split("/", 1)[0]
    return ":" not in head or os.path.exists(url)

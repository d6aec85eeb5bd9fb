"""A persistent bare mirror of a registry repository, synced with as little transfer as possible.

An unchanged remote costs one ref listing (`git ls-remote`): no object download. On change, only
new tag and commit objects are fetched, plus blobs under 1 MiB (artifacts.yaml and other small
files; never the model files); nothing is checked out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from gitstage.adapters.fetch.credentials import (
    GitCredentials,
    git_environment,
    redact,
    split_userinfo,
)
from gitstage.adapters.git.policy_reader import gto_stages_at_head, policy_evaluator
from gitstage.adapters.git.reader import Registry, open_repository, read_registry
from gitstage.domain.policy import PolicyEvaluator

BLOB_LIMIT = "blob:limit=1m"
DIGEST_FILE = "gitstage-refs-digest"


class MirrorError(RuntimeError):
    """One line, no secrets. `permanent` marks errors a retry will not fix (credentials)."""

    def __init__(self, message: str, reason: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class RefState:
    digest: str
    head: str | None


@dataclass
class MirrorCounters:
    """What a mirror did, for metrics and tests."""

    ref_listings: int = 0
    fetches: int = 0
    errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    refs: RefState


def fingerprint(url: str, credentials: GitCredentials | None, branch: str) -> str:
    """Identifies a mirror: the secret enters only through a hash."""
    secret = ""
    if credentials is not None:
        secret = f"{credentials.username}:{credentials.password}:{credentials.bearer}"
        if credentials.ssh_key is not None:
            secret += f":{credentials.ssh_key}:{credentials.known_hosts}"
    return hashlib.sha256(f"{url}\0{branch}\0{secret}".encode()).hexdigest()[:20]


class RemoteMirror:
    def __init__(
        self,
        url: str,
        credentials: GitCredentials | None,
        cache_root: Path,
        branch: str = "main",
        timeout: float = 60.0,
    ) -> None:
        clean, user, password = split_userinfo(url)
        if password is not None:
            credentials = GitCredentials(user, password, None)
        self.url = clean
        self.branch = branch
        self.timeout = timeout
        self._credentials = credentials
        self.path = cache_root / fingerprint(clean, credentials, branch)
        self.counters = MirrorCounters()

    def _ensure(self) -> None:
        if (self.path / "HEAD").is_file():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".mirror-", dir=self.path.parent))
        self._git(["init", "--quiet", "--bare", str(staging)], cwd=self.path.parent)
        self._git(["-C", str(staging), "remote", "add", "origin", self.url], cwd=self.path.parent)
        staging.rename(self.path)

    def list_refs(self) -> RefState:
        self._ensure()
        self.counters.ref_listings += 1
        out = self._git(
            ["ls-remote", "origin", "refs/tags/*", f"refs/heads/{self.branch}"], cwd=self.path
        )
        lines = sorted(line for line in out.splitlines() if line.strip())
        head = next(
            (line.split()[0] for line in lines if line.endswith(f"\trefs/heads/{self.branch}")),
            None,
        )
        if head is None:
            raise MirrorError(
                f"branch {self.branch!r} not found in {redact(self.url)}", "BranchNotFound"
            )
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
        return RefState(digest, head)

    def sync(self) -> SyncResult:
        refs = self.list_refs()
        digest_file = self.path / DIGEST_FILE
        if digest_file.is_file() and digest_file.read_text() == refs.digest:
            return SyncResult(False, refs)
        self.counters.fetches += 1
        self._git(
            [
                "fetch",
                "--quiet",
                "--prune",
                "--no-tags",
                f"--filter={BLOB_LIMIT}",
                "origin",
                "+refs/tags/*:refs/tags/*",
                f"+refs/heads/{self.branch}:refs/heads/{self.branch}",
            ],
            cwd=self.path,
        )
        self._git(["symbolic-ref", "HEAD", f"refs/heads/{self.branch}"], cwd=self.path)
        digest_file.write_text(refs.digest)
        return SyncResult(True, refs)

    def registry(self) -> Registry:
        return read_registry(self.path)

    def policy(self, registry: Registry) -> PolicyEvaluator | None:
        """The promotion policy at the branch tip, over `registry`; None without a policy file.

        Nothing is verified here: the evaluator checks signatures of the tags it is asked about
        (the mirror holds every tag object and the small key files). Raises PolicyFileError.
        """
        repo = open_repository(self.path)
        return policy_evaluator(repo, registry.state, gto_stages_at_head(repo))

    def _git(self, args: list[str], cwd: Path) -> str:
        git = shutil.which("git")
        if git is None:
            raise MirrorError("git is not installed", "GitMissing", permanent=True)
        scratch = self.path.parent
        scratch.mkdir(parents=True, exist_ok=True)
        env = git_environment(os.environ, self._credentials, scratch)
        try:
            result = subprocess.run(
                [git, *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.counters.errors += 1
            raise MirrorError(
                f"git {args[0]} {redact(self.url)} timed out after {self.timeout:.0f}s",
                "SourceUnavailable",
            ) from None
        if result.returncode != 0:
            self.counters.errors += 1
            raise _classify(args[0], result.stderr, self.url)
        return result.stdout


_AUTH = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "403",
    "401",
    "permission denied",
)
_MISSING = ("not found", "does not appear to be a git repository", "repository not found")


def _classify(command: str, stderr: str, url: str) -> MirrorError:
    text = stderr.lower()
    shown = redact(url)
    if "host key verification failed" in text:
        return MirrorError(
            f"host key of {shown} is not in the known_hosts given", "HostKeyUnknown", permanent=True
        )
    if any(hint in text for hint in _AUTH):
        return MirrorError(
            f"authentication failed for {shown}", "AuthenticationFailed", permanent=True
        )
    if any(hint in text for hint in _MISSING):
        return MirrorError(f"repository {shown} not found", "RepositoryNotFound")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = redact(lines[-1]) if lines else "no output"
    return MirrorError(f"git {command} {shown} failed: {detail}", "SourceUnavailable")


def mirror_registry(url: str, branch: str = "main") -> Registry:
    """`gitstage.api` on a URL: sync a persistent mirror, then read it."""
    cache = Path(
        os.environ.get("GITSTAGE_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitstage"
    )
    credentials = GitCredentials.from_env(os.environ)
    mirror = RemoteMirror(
        url, None if credentials.empty else credentials, cache / "mirrors", branch
    )
    mirror.sync()
    return mirror.registry()

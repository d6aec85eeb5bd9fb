"""A persistent bare cache of a registry repository, synced with as little transfer as possible.

An unchanged remote costs one ref listing (`git ls-remote`) and nothing else. On change, one
blobless fetch brings the new tag, commit and tree objects (deleted tags are pruned, because
unassign-by-delete is a thing), then one more fetch brings the artifacts.yaml blobs the registry
reads that the cache lacks. Nothing is checked out; HEAD is the followed branch.
Flux's source-controller does the same with `OptimizedGitClones` (ls-remote before clone).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pygit2

from gitstage.adapters.git.blobs import BlobTooLargeError
from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.gc_pause import gc_paused
from gitstage.adapters.git.incremental import IncrementalReader
from gitstage.adapters.git.policy_reader import (
    blob_at_head,
    gto_stages_at_head,
    policy_evaluator,
)
from gitstage.adapters.git.reader import Registry
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.adapters.git.source import MIRROR_CONFIG_FILE, open_source
from gitstage.adapters.mirror.errors import (
    BranchNotFound,
    GitOperationFailed,
    InvalidSource,
    MirrorError,
    RegistryUnreadable,
)
from gitstage.adapters.mirror.git_command import GitCall, GitRunner
from gitstage.adapters.mirror.index_blobs import missing_index_blobs
from gitstage.adapters.mirror.listing import (
    TAG_PREFIX,
    RefState,
    parse_refs,
    patched,
)
from gitstage.adapters.mirror.sync_state import SyncState, load_state, save_state
from gitstage.domain.policy.rules import PolicyEvaluator
from gitstage.domain.registry.files import CONFIG_FILE
from gitstage.domain.repo_urls import redact, split_userinfo

__all__ = [
    "MirrorCounters",
    "MirrorError",
    "RefState",
    "RemoteMirror",
    "SyncResult",
    "Timeouts",
    "fingerprint",
    "mirror_registry",
]

log = logging.getLogger(__name__)
REF_BATCH = 500
# With no branch, the mirror follows the remote's HEAD (its default branch), as a clone does.
DEFAULT_BRANCH = "gitstage-default"
FETCH_OPTIONS = (
    "--quiet",
    "--no-tags",
    "--no-write-fetch-head",
    "--recurse-submodules=no",
    "--filter=blob:none",
)
MAX_HINTS = 32  # refs a webhook may name for a partial sync; more: a full listing
BLOB_ROUNDS = 2  # index, .gto and policy; then the key files the policy names


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed per git operation before it is killed."""

    ls_remote: float = 30.0
    fetch: float = 300.0
    blobs: float = 120.0

    @classmethod
    def uniform(cls, seconds: float) -> Timeouts:
        return cls(seconds, seconds, seconds)

    def widest(self, other: Timeouts) -> Timeouts:
        return Timeouts(
            max(self.ls_remote, other.ls_remote),
            max(self.fetch, other.fetch),
            max(self.blobs, other.blobs),
        )


@dataclass
class MirrorCounters:
    """Network operations by kind, and failed ones, since this object was made."""

    ref_listings: int = 0
    fetches: int = 0
    blob_fetches: int = 0
    errors: int = 0


PACK_AFTER = 1_000  # ref updates in one sync after which the cache's refs are packed


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    refs: RefState
    head: str  # the branch tip in the cache
    synced_at: datetime  # when the cache last changed (kept across restarts)
    partial: bool = False  # only the refs a webhook named were read from the remote

    @property
    def digest(self) -> str:
        return self.refs.digest


def fingerprint(url: str, credentials: GitCredentials | None, branch: str) -> str:
    """Names a cache: the credentials enter only through a hash, never in clear."""
    parts = [url, branch]
    if credentials is not None:
        parts += [credentials.username or "", credentials.password or "", credentials.bearer or ""]
        if credentials.ssh_key is not None:
            parts += [credentials.ssh_key, credentials.known_hosts or ""]
    return hashlib.sha256("\0".join(["gitstage-mirror/1", *parts]).encode()).hexdigest()[:24]


class RemoteMirror:
    """A bare, blobless cache of `branch` and every tag of `url`, under `cache_root`."""

    def __init__(
        self,
        url: str,
        credentials: GitCredentials | None,
        cache_root: Path,
        branch: str | None = "main",
        timeouts: Timeouts | float | None = None,
    ) -> None:
        clean, user, password = split_userinfo(url)
        if credentials is None and password is not None:
            credentials = GitCredentials(user, password, None)
        _check_source(clean, branch)
        self.url = clean
        self.shown_url = redact(clean)
        self.branch = branch
        self._local_branch = f"refs/heads/{branch or DEFAULT_BRANCH}"
        if timeouts is None:
            timeouts = Timeouts()
        self.timeouts = timeouts if isinstance(timeouts, Timeouts) else Timeouts.uniform(timeouts)
        self.id = fingerprint(clean, credentials, branch or "")
        self.path = cache_root / self.id
        self.counters = MirrorCounters()
        self._reader = IncrementalReader()  # a push refolds only the artifacts it tags
        self._synced: RefState | None = None  # the listing this process last synced
        self._lock_path = cache_root / f"{self.id}.lock"
        self._fetch_dir = cache_root / f"{self.id}.fetch"
        self._fetched = False  # objects came in since the cache's last housekeeping
        self._runner = GitRunner(self.path, credentials, self.shown_url, cache_root, url=clean)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets to scrub from any text shown about this mirror."""
        return self._runner.secrets

    def list_refs(self) -> RefState:
        """One ref listing of the remote (tags and the branch)."""
        self._ensure_cache()
        # --tags --heads become `ref-prefix` arguments: the server lists only those, not
        # refs/pull/* or refs/changes/*; the patterns then filter on our side. Following HEAD
        # needs the full listing (a `refs/heads/` prefix would leave HEAD out).
        scope = ["--tags", "--heads"] if self.branch else ["--symref"]
        wanted = f"refs/heads/{self.branch}" if self.branch else "HEAD"
        out = self._git(
            "ls-remote",
            ["ls-remote", *scope, "origin", "refs/tags/*", wanted],
            self.timeouts.ls_remote,
        )
        self.counters.ref_listings += 1
        return self._parse_listing(out)

    def sync(self, hints: Collection[str] = ()) -> SyncResult:
        """List refs; when they differ from the last sync, fetch what is new and move the refs.

        `hints`: refs a webhook named. When the cache holds what this process last synced,
        only those refs (and the branch) are read from the remote, in one fetch that lists
        nothing else: on a 100,000-tag registry, milliseconds instead of a full listing.
        """
        with self._locked():
            state = load_state(self.path)
            # The refs this process last synced are the cache's refs while the state on disk
            # is still theirs (another process may share the cache): then only the tags that
            # changed since are looked at, not every tag of a 100,000-tag registry.
            known = self._synced
            if state is None or known is None or state.digest != known.digest:
                known = None
            prefixes = self._hinted_prefixes(hints) if known is not None else None
            if known is not None and state is not None and prefixes is not None:
                return self._sync_hinted(known, prefixes, state)
            return self._sync_listed(state, known)

    def _sync_listed(self, state: SyncState | None, previous: RefState | None) -> SyncResult:
        refs = self.list_refs()
        if state is not None and state.digest == refs.digest:
            self._synced = refs
            return SyncResult(False, refs, state.head, state.synced_at)
        changed = (
            refs.tags
            if previous is None
            else {n: sha for n, sha in refs.tags.items() if previous.tags.get(n) != sha}
        )
        self._synced = None  # until this sync completes: a failure may leave refs half-moved
        self._fetch_objects(refs, changed)
        self._fetch_index_blobs(refs, changed)
        self._move_refs(state, refs, previous, changed)
        return self._synced_to(refs)

    def _sync_hinted(self, known: RefState, prefixes: list[str], state: SyncState) -> SyncResult:
        """Re-read the tags under `prefixes` and the branch from the remote: one fetch whose
        refspecs narrow the server's listing to them (`--prune` notes the ones gone there)."""
        self._synced = None
        branch = self._local_branch
        patterns = [f"{TAG_PREFIX}{prefix}*" for prefix in prefixes]
        specs = [f"+{branch}:{branch}", *(f"+{p}:{p}" for p in patterns)]
        self._fetch_git(
            "fetch",
            [
                "fetch",
                f"--negotiation-tip={known.head}",
                "--prune",
                "--update-head-ok",
                *FETCH_OPTIONS,
                "origin",
                *specs,
            ],
            self.timeouts.fetch,
        )
        self.counters.ref_listings += 1
        self.counters.fetches += 1
        self._fetched = True
        listed = self._fetch_git(
            "read refs of",
            ["for-each-ref", "--format=%(objectname) %(refname)", branch, *patterns],
            self.timeouts.ls_remote,
        )
        tags_listed, head = parse_refs(listed, branch)
        if head is None:
            raise BranchNotFound(f"branch {self.branch!r} not found in {self.shown_url}")
        self._clear_fetch_tags(tags_listed)
        patch = patched(known, prefixes, tags_listed, head)
        self._fetch_index_blobs(patch.refs, patch.changed)
        self._move_refs(state, patch.refs, known, patch.changed, patch.deleted)
        return replace(self._synced_to(patch.refs), partial=True)

    def _fetch_git(self, operation: str, args: list[str], timeout: float, stdin: str = "") -> str:
        """git in the fetch directory: a bare repository that writes into the cache's object
        store and holds no tags of its own. Git's fetch first parses the object of every local
        ref (0.75 s at 120,000 tags, whatever it fetches); here there are one or two."""
        self._ensure_fetch_dir()
        return self._git(
            operation,
            [f"--git-dir={self._fetch_dir}", *args],
            timeout,
            stdin=stdin or None,
            env={"GIT_OBJECT_DIRECTORY": str(self.path / "objects")},
        )

    def _ensure_fetch_dir(self) -> None:
        if (self._fetch_dir / "HEAD").is_file():
            return
        repo = pygit2.init_repository(str(self._fetch_dir), bare=True)
        repo.config["remote.origin.url"] = self.url
        # Never a gc here: it would see the cache's objects without the cache's refs.
        repo.config["gc.auto"] = "0"
        repo.config["maintenance.auto"] = "false"

    def _clear_fetch_tags(self, tags: Mapping[str, str]) -> None:
        """The fetch directory keeps no tags: each would cost every later fetch a parse."""
        if tags:
            script = "".join(f"delete {TAG_PREFIX}{name}\n" for name in tags)
            self._fetch_git("update-ref", ["update-ref", "--stdin"], 60.0, stdin=script)

    def _synced_to(self, refs: RefState) -> SyncResult:
        if self._fetched:  # fetches skip git's own housekeeping (they run elsewhere)
            self._git("gc", ["-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"], 600.0)
            self._fetched = False
        self._keep_head_config()
        state = SyncState(refs.digest, refs.head, datetime.now(UTC))
        save_state(self.path, state)
        self._synced = refs
        log.debug("synced %s: %d tags, head %s", self.shown_url, len(refs.tags), refs.head)
        return SyncResult(True, refs, state.head, state.synced_at)

    def _hinted_prefixes(self, hints: Collection[str]) -> list[str] | None:
        """The tag names of `hints` when a partial read can serve them all; else None."""
        if not hints or not self.branch or len(hints) > MAX_HINTS:
            return None
        names = []
        for ref in hints:
            if ref == self._local_branch:
                continue  # always read
            if not ref.startswith(TAG_PREFIX) or not pygit2.reference_is_valid_name(ref):
                return None  # another branch, a truncated or odd name: list everything
            names.append(ref[len(TAG_PREFIX) :])
        return sorted(set(names))

    def registry(self) -> Registry:
        """The registry as of the last sync (HEAD is the branch tip)."""
        with self._locked(), gc_paused():
            try:
                return self._reader.read(open_source(self.path, self._reader.packed_refs))
            except RepositoryError as error:
                raise GitOperationFailed(f"cache of {self.shown_url}: {error}") from None

    def ensure_blob(self, commit: str, path: str) -> None:
        """Fetch the blob at `path` in `commit` if the cache lacks it (describe at any rev)."""
        with self._locked():
            repo = self._repo()
            try:
                entry = repo.revparse_single(commit).peel(pygit2.Commit).tree[path]
            except (KeyError, ValueError, pygit2.GitError):
                return  # no such file there (or no such commit): the reader says so
            if entry.type_str == "blob" and entry.id not in repo:
                self._want("fetch blob from", [str(entry.id)], self.timeouts.blobs)
                self.counters.blob_fetches += 1

    def _fetch_objects(self, refs: RefState, changed: Mapping[str, str]) -> None:
        """Fetch the listed objects the cache lacks, by SHA: git then skips its own ref listing.
        `changed`: the tags to look at (the others point at objects the cache holds)."""
        repo = self._repo()
        wanted = sorted({sha for sha in (*changed.values(), refs.head) if sha not in repo})
        if not wanted:
            return  # only deletions, or refs moved to objects we hold
        # Negotiating from the branch tip alone: the fetch directory holds no refs to offer.
        tip = refs_head_in(repo, self._local_branch)
        self._want("fetch", wanted, self.timeouts.fetch, noop_negotiation=False, tip=tip)
        self.counters.fetches += 1

    def _fetch_index_blobs(self, refs: RefState, changed: Mapping[str, str]) -> None:
        """Fetch the blobs the readers need (for HEAD and the `changed` tags); a second round
        brings the key files named by a policy that the first round brought."""
        missing = self._missing_blobs(refs.head, changed)
        for _ in range(BLOB_ROUNDS):
            if not missing:
                return
            self._want("fetch index and policy blobs from", missing, self.timeouts.blobs)
            self.counters.blob_fetches += 1
            asked, missing = missing, self._missing_blobs(refs.head, changed)
            if set(asked) & set(missing):
                break  # asked for and not sent: another round would not help
        if missing:
            self.counters.errors += 1
            raise GitOperationFailed(
                f"fetch {self.shown_url}: the server did not send {len(missing)} blobs "
                "(artifacts.yaml, .gto or policy files)"
            )

    def _want(
        self,
        operation: str,
        shas: list[str],
        timeout: float,
        *,
        noop_negotiation: bool = True,
        tip: str | None = None,
    ) -> None:
        """One `git fetch` of explicit objects (protocol v2 serves any; v0 any advertised tip)."""
        # Blobs need no negotiation: `have` rounds cannot shrink a list of blobs.
        config = ["-c", "fetch.negotiationAlgorithm=noop"] if noop_negotiation else []
        negotiation = [f"--negotiation-tip={tip}"] if tip is not None else []
        self._fetch_git(
            operation,
            [*config, "fetch", *negotiation, *FETCH_OPTIONS, "--stdin", "origin"],
            timeout,
            stdin="".join(f"{sha}\n" for sha in shas),
        )
        self._fetched = True

    def _move_refs(
        self,
        state: SyncState | None,
        refs: RefState,
        previous: RefState | None,
        changed: Mapping[str, str],
        deleted: list[str] | None = None,
    ) -> None:
        """Make the cache's tags and branch exactly the listed ones. `state`: the one on disk;
        `previous`: the listing the cache's refs are known to hold (None: read them from the
        cache); `changed` and `deleted`: how the listed tags differ from it (None: compare)."""
        if previous is None:
            commands = self._commands_against_cache(refs)
        else:
            if deleted is None:
                deleted = [name for name in previous.tags if name not in refs.tags]
            commands = [f"update {TAG_PREFIX}{name} {sha}\n" for name, sha in changed.items()]
            # Deleted on the remote: gone here too (unassign-by-delete).
            commands += [f"delete {TAG_PREFIX}{name}\n" for name in deleted]
            if refs.head != previous.head:
                commands.append(f"update {self._local_branch} {refs.head}\n")
        if not commands:
            return
        if state is not None:  # no state may match half-moved refs after a crash
            save_state(self.path, SyncState("", state.head, state.synced_at))
        # Transactions of REF_BATCH refs: one transaction of thousands of refs is quadratic in
        # git 2.39 (7,000 tags: 3.3 s against 0.8 s batched). A crash between batches is
        # repaired by the next sync, as the sync state is written only after all of them.
        script = []
        for start in range(0, len(commands), REF_BATCH):
            script += ["start\n", *commands[start : start + REF_BATCH], "commit\n"]
        self._git("update-ref", ["update-ref", "--stdin"], 120.0, stdin="".join(script))
        if len(commands) >= PACK_AFTER:
            # Thousands of loose ref files make every later read list thousands of files
            # (1.5 s a read at 120,000 tags); packed, a read is one file.
            self._git("pack-refs", ["pack-refs", "--all", "--prune"], 120.0)

    def _commands_against_cache(self, refs: RefState) -> list[str]:
        current = {
            ref.name: str(ref.target)
            for ref in self._repo().listall_reference_objects()
            if isinstance(ref.target, pygit2.Oid)
        }
        listed = {f"{TAG_PREFIX}{name}": sha for name, sha in refs.tags.items()}
        listed[self._local_branch] = refs.head
        commands = [
            f"update {name} {sha}\n" for name, sha in listed.items() if current.get(name) != sha
        ]
        # Deleted on the remote: gone here too (unassign-by-delete).
        return commands + [f"delete {name}\n" for name in current if name not in listed]

    def _missing_blobs(self, head: str, tags: Mapping[str, str]) -> list[str]:
        try:
            return missing_index_blobs(self.path, tags, head)
        except (pygit2.GitError, KeyError, ValueError) as error:
            raise GitOperationFailed(f"cache of {self.shown_url} unreadable: {error}") from None

    def _repo(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.path))

    def _parse_listing(self, out: str) -> RefState:
        remote_head = f"refs/heads/{self.branch}" if self.branch else "HEAD"
        tags, head = parse_refs(out, remote_head)
        if head is None:
            what = f"branch {self.branch!r}" if self.branch else "a default branch (HEAD)"
            raise BranchNotFound(f"{what} not found in {self.shown_url}")
        return RefState.of(tags, head)

    def _ensure_cache(self) -> None:
        if (self.path / "HEAD").is_file():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # pygit2 writes the config directly: the URL never reaches a command line.
        repo = pygit2.init_repository(str(self.path), bare=True, initial_head=self._local_branch)
        repo.config["remote.origin.url"] = self.url

    def _keep_head_config(self) -> None:
        """`.gto` at HEAD beside the bare mirror: readers take `.gto` from a work tree, and a
        clone's work tree is the default branch's tip (what gto reads for a URL)."""
        from gitstage.adapters.git.atomic_file import write_atomically

        try:
            text = blob_at_head(self._repo(), CONFIG_FILE)
        except BlobTooLargeError as error:
            raise RegistryUnreadable(f"reading {self.shown_url}: {error}") from None
        target = self.path / MIRROR_CONFIG_FILE
        if text is None:
            target.unlink(missing_ok=True)
        else:
            write_atomically(str(target), text)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer per cache across threads and processes (operator, CLI)."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def policy(self, registry: Registry) -> PolicyEvaluator | None:
        """The promotion policy at the branch tip, over `registry`; None without a policy file.

        Nothing is verified here: the evaluator checks signatures of the tags it is asked about
        (the mirror holds every tag object and the small key files). Raises PolicyFileError.
        """
        with self._locked():
            repo = open_repository(self.path)
            return policy_evaluator(repo, registry.state, gto_stages_at_head(repo))

    def _git(
        self,
        operation: str,
        args: list[str],
        timeout: float,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        try:
            return self._runner.run(GitCall(operation, args, timeout, stdin, env or {}))
        except MirrorError:
            self.counters.errors += 1
            raise


def refs_head_in(repo: pygit2.Repository, branch: str) -> str | None:
    """The commit `branch` points at in `repo`, if it exists."""
    ref = repo.references.get(branch)
    return str(ref.target) if ref is not None and isinstance(ref.target, pygit2.Oid) else None


def _check_source(url: str, branch: str | None) -> None:
    if not url or url.startswith("-"):
        raise InvalidSource(f"invalid repository URL {redact(url)!r}")
    if branch is None:
        return
    if not branch or not pygit2.reference_is_valid_name(f"refs/heads/{branch}"):
        raise InvalidSource(f"invalid branch name {branch!r}")


def mirror_cache_root(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(environ.get("GITSTAGE_CACHE_DIR") or Path(base) / "gitstage") / "mirrors"


def synced_mirror(url: str, branch: str | None = None) -> RemoteMirror:
    """The persistent mirror of `url` (its default branch unless `branch`), synced now.

    Credentials come from the URL's userinfo or GITSTAGE_GIT_* variables, as `fetch` takes them.
    """
    credentials = GitCredentials.from_env(os.environ)
    mirror = RemoteMirror(
        url, None if credentials.empty else credentials, mirror_cache_root(os.environ), branch
    )
    mirror.sync()
    return mirror


def mirror_registry(url: str, branch: str | None = None) -> Registry:
    """`gitstage.api` on a URL: sync a persistent mirror, then read it."""
    return synced_mirror(url, branch).registry()

"""Fetch an artifact exactly as registered at a commit, for init containers and Python code.

    from gitstage.fetching import fetch_artifact
    model = fetch_artifact("https://git.example.com/registry.git", "3f6c0e1...", "churn")
    # -> ~/.cache/gitstage/artifacts/3f6c0e1.../churn-<hash>/model.pkl (a file artifact),
    #    or the directory itself for a directory artifact

DEST layout: a file artifact lands as DEST/<file name>; a directory artifact's contents are
DEST's contents; DEST/.gitstage-manifest.json records what was fetched and the sha256 of each file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitstage.adapters.fetch.destination import clear, locked, recover
from gitstage.adapters.fetch.materialize import Located, materialize
from gitstage.adapters.fetch.progress import Progress
from gitstage.adapters.fetch.staging import (
    ByteBudget,
    Staging,
    files_intact,
    read_manifest,
    write_manifest,
)
from gitstage.adapters.fetch.workdir import private_workdir
from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.link_chain import Chain, Hop, follow
from gitstage.adapters.git.shallow_fetch import is_local_path
from gitstage.adapters.transport import CaBundleError, tls_context
from gitstage.domain.fetch.errors import BadInputError, NotFoundError
from gitstage.domain.fetch.limits import (
    MAX_SECONDS,
    NO_LIMITS,
    Deadline,
    FetchLimits,
    valid_seconds,
)
from gitstage.domain.fetch.links import is_valid_rev
from gitstage.domain.fetch.manifest import MANIFEST_FILE, FetchRequest, Labels, Manifest
from gitstage.domain.fetch.plan import locate
from gitstage.domain.fetch.repo_paths import safe_relative
from gitstage.domain.registry.index import ArtifactAnnotation
from gitstage.domain.registry.names import is_hexsha, is_valid_fullname, is_valid_name
from gitstage.domain.registry.selection import Resolution, SelectionError, Selector, resolve
from gitstage.domain.registry.views import ArtifactNotFoundError, Sort
from gitstage.domain.repo_urls import redact, split_userinfo

if TYPE_CHECKING:
    from gitstage.adapters.mirror.locate import ReadTarget

ENV_CACHE_DIR = "GITSTAGE_CACHE_DIR"
# What a local file that git can fetch from starts with: a git bundle, or a gitfile (worktrees).
_FETCHABLE_FILES = (b"# v2 git bundle", b"# v3 git bundle", b"gitdir: ")
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class FetchSpec:
    """`artifact` may be None when `path` is given (a plain file or directory of the repo)."""

    repo: str
    rev: str
    artifact: str | None
    dest: Path | None = None
    path: str | None = None
    version: str | None = None
    stage: str | None = None
    limits: FetchLimits = NO_LIMITS
    registration_tag: str | None = None
    assignment_tag: str | None = None

    @property
    def labels(self) -> Labels:
        return Labels.of(self)

    @property
    def title(self) -> str:
        return self.artifact or str(self.path)


@dataclass(frozen=True)
class FetchResult:
    location: Path
    dest: Path
    manifest: Manifest
    fetched: bool


def fetch_artifact(
    repo: str,
    commit: str,
    artifact: str | None,
    dest: str | os.PathLike[str] | None = None,
    path: str | None = None,
    *,
    labels: Labels | None = None,
    max_bytes: int | None = None,
) -> Path:
    """The artifact's local path (a file, or a directory), fetched once per commit and cached."""
    given = labels or Labels()
    spec = FetchSpec(
        repo,
        commit,
        artifact,
        None if dest is None else Path(dest),
        path,
        given.version,
        given.stage,
        FetchLimits(max_bytes),
        given.registration_tag,
        given.assignment_tag,
    )
    return fetch(spec).location


def fetch(
    spec: FetchSpec, environ: Mapping[str, str] | None = None, progress: bool | None = None
) -> FetchResult:
    """`progress=None` shows progress when stderr is a terminal.

    A commit SHA is looked up in DEST (or the cache) before any network call. Any other revision
    (HEAD, a branch, a tag) can move: its git objects are fetched first, and DEST is keyed and
    checked by the commit it names now, so a moved ref never returns its old commit's bytes.
    """
    env = os.environ if environ is None else environ
    _validate(spec)
    _check_ca_bundle(env)
    _check_local_source(spec.repo)
    if is_hexsha(spec.rev):
        return _fetch_at(spec, spec.rev.lower(), None, env, progress)
    deadline = spec.limits.deadline()
    with private_workdir() as work:
        started = _Started(_follow(spec, work, env, deadline), deadline)
        return _fetch_at(spec, started.chain.sources[0].commit, started, env, progress)


@dataclass(frozen=True)
class _Started:
    """The git part of a fetch, done: the repositories visited, and the deadline it runs by."""

    chain: Chain
    deadline: Deadline


def _follow(spec: FetchSpec, work: Path, env: Mapping[str, str], deadline: Deadline) -> Chain:
    """Shallow-fetch the requested commit and every link from it (credentials from env/URL)."""
    clean_url, user, password = split_userinfo(spec.repo)
    credentials = GitCredentials.from_env(env, user, password)
    start = Hop(clean_url, spec.rev, spec.artifact, spec.path, credentials)
    return follow(start, work, env, deadline)


def _fetch_at(
    spec: FetchSpec,
    commit: str,
    started: _Started | None,
    env: Mapping[str, str],
    progress: bool | None,
) -> FetchResult:
    """SPEC at COMMIT into DEST (the cache: keyed by COMMIT) unless DEST holds it already.

    `started`: the git objects are fetched (a ref resolved to COMMIT); else fetched on a miss.
    """
    request = FetchRequest(
        repo=redact(split_userinfo(spec.repo)[0]),
        rev=commit,
        artifact=spec.artifact,
        path=spec.path,
    )
    dest = (spec.dest or cache_path(commit, spec.artifact, spec.path, env)).absolute()
    with locked(dest):
        existing = _previous(dest, cached=spec.dest is None)
        if existing is not None and existing.request == request and files_intact(dest, existing):
            return _reuse(dest, existing, spec)
        if started is not None:
            return _fetch_into(dest, spec, request, existing, started, env=env, progress=progress)
        deadline = spec.limits.deadline()
        with private_workdir() as work:
            started = _Started(_follow(spec, work, env, deadline), deadline)
            return _fetch_into(dest, spec, request, existing, started, env=env, progress=progress)


def _previous(dest: Path, *, cached: bool) -> Manifest | None:
    """What DEST holds (the caller holds its lock). A cache entry is gitstage's alone: one that is
    damaged (a corrupt manifest or journal, stray files) is emptied and fetched again."""
    try:
        recover(dest)
        existing = read_manifest(dest)
    except BadInputError:
        if not cached:
            raise
        existing = None
    if cached and existing is None:
        clear(dest)
    return existing


def _reuse(dest: Path, existing: Manifest, spec: FetchSpec) -> FetchResult:
    """DEST holds what SPEC asks for; the size limit still applies, and the labels may change."""
    ByteBudget(spec.limits.max_bytes).charge(sum(record.size for record in existing.files))
    if existing.labels != spec.labels:
        existing = existing.relabel(spec.labels)
        write_manifest(dest, existing)
    return FetchResult(dest / existing.target, dest, existing, fetched=False)


def _fetch_into(
    dest: Path,
    spec: FetchSpec,
    request: FetchRequest,
    existing: Manifest | None,
    started: _Started,
    *,
    env: Mapping[str, str],
    progress: bool | None,
) -> FetchResult:
    """Install into DEST (the caller holds its lock); `existing` is what it holds."""
    chain, deadline = started.chain, started.deadline
    source = locate(chain.fetched.tree, chain.path)
    meter = Progress(f"fetching {spec.title}", None, enabled=progress)
    with Staging(dest, ByteBudget(spec.limits.max_bytes), meter, existing) as staging:
        located = Located(chain.fetched.tree, chain.path, chain.fetched.local_path)
        kind, target = materialize(source, located, staging, env, deadline)
        meter.finish()
        manifest = Manifest(
            artifact=spec.artifact,
            **spec.labels.model_dump(),
            request=request,
            commit=chain.sources[0].commit,
            sources=chain.sources,
            kind=kind,
            target=target,
            files=sorted(staging.records, key=lambda record: record.path),
            total_bytes=sum(record.size for record in staging.records),
        )
        staging.install(manifest)
    return FetchResult(dest / target, dest, manifest, fetched=True)


def _check_local_source(repo: str) -> None:
    """A local file git cannot fetch from is no repository: said here, not as a git failure."""
    path = Path(repo)
    if not is_local_path(repo) or not path.is_file():
        return
    with path.open("rb") as handle:
        head = handle.read(max(len(signature) for signature in _FETCHABLE_FILES))
    if not head.startswith(_FETCHABLE_FILES):
        raise NotFoundError(f"repository {redact(repo)} not found: not a git repository")


def _check_ca_bundle(env: Mapping[str, str]) -> None:
    """A bad GITSTAGE_CA_BUNDLE is the caller's input error, said before any git or DVC call."""
    try:
        tls_context(env)
    except CaBundleError as error:
        raise BadInputError(str(error)) from None


def _validate(spec: FetchSpec) -> None:
    if not spec.repo.strip() or spec.repo.startswith("-"):
        raise BadInputError(f"invalid repository {redact(spec.repo)!r}")
    if not is_valid_rev(spec.rev):
        raise BadInputError(f"invalid revision {spec.rev!r}: give a commit SHA or a tag name")
    if spec.artifact is None and spec.path is None:
        raise BadInputError("give an artifact name or a path")
    if spec.artifact is not None and not is_valid_fullname(spec.artifact):
        raise BadInputError(f"invalid artifact name {spec.artifact!r}")
    if spec.path is not None:
        safe_relative(spec.path, "path")
    if spec.stage is not None and not is_valid_name(spec.stage):
        raise BadInputError(f"invalid stage name {spec.stage!r}")
    limits = spec.limits
    if limits.max_bytes is not None and limits.max_bytes < 0:
        raise BadInputError("the size limit must not be negative")
    if not (valid_seconds(limits.timeout) and valid_seconds(limits.stall_timeout)):
        raise BadInputError(
            f"the timeout and the stall timeout must be positive seconds, at most {MAX_SECONDS:g}"
        )


def cache_root(environ: Mapping[str, str]) -> Path:
    if environ.get(ENV_CACHE_DIR):
        return Path(environ[ENV_CACHE_DIR])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitstage" / "artifacts"


def cache_path(
    rev: str, artifact: str | None, path: str | None, environ: Mapping[str, str]
) -> Path:
    """One directory per (commit, artifact, path); the hash keeps sanitized names apart."""
    digest = hashlib.sha256(f"{artifact or ''}\0{path or ''}".encode()).hexdigest()[:12]
    name = f"{_UNSAFE_IN_NAME.sub('_', artifact or 'path')}-{digest}"
    return cache_root(environ) / _UNSAFE_IN_NAME.sub("_", rev) / name


def place(result: FetchResult, out: Path) -> Path:
    """Copy a fetched artifact to `out` as `dvc get -o` does, touching nothing else there.

    A file goes to `out` (into it when `out` is a directory); a directory artifact becomes
    `out`, which must not exist or be empty. Writes are atomic (a temporary, then a rename).
    """
    source = result.location
    if source.is_file():
        target = out / source.name if out.is_dir() else out
        _copy_atomically(source, target)
        return target
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInputError(
            f"{out} exists and is not empty; a directory artifact needs a new or empty directory"
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.gitstage-", dir=out.parent))
    try:
        shutil.copytree(source, staging / "tree", ignore=shutil.ignore_patterns(MANIFEST_FILE))
        if out.exists():
            out.rmdir()
        (staging / "tree").rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _copy_atomically(source: Path, target: Path) -> None:
    if not target.parent.is_dir():
        raise BadInputError(f"{target.parent} is not a directory")
    temporary = target.parent / f".{target.name}.gitstage-{os.getpid()}"
    try:
        shutil.copyfile(source, temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class Selected:
    """A fetch resolved through the registry: the files, what they are, and their annotation."""

    result: FetchResult
    resolution: Resolution
    annotation: ArtifactAnnotation | None


def fetch_selected(
    name: str | None,
    repo: str,
    selector: Selector,
    *,
    path: str | None = None,
    dest: Path | None = None,
    sort: str = "timestamp",
    limits: FetchLimits = NO_LIMITS,
    progress: bool | None = False,
) -> Selected:
    """Resolve `selector` (latest when empty) through the registry at `repo`, then fetch.

    A registered version whose commit has no artifacts.yaml entry takes the path of the entry at
    HEAD (registered first, annotated later). A URL is read through the remote mirror.
    """
    from gitstage.adapters.mirror.locate import open_for_read

    if name is None:
        if selector.stage is not None or selector.version is not None:
            raise BadInputError("--stage and --version need an artifact NAME")
        resolution = Resolution("", selector.rev or "HEAD")
        annotation = None
    else:
        target = open_for_read(repo)
        resolution = _resolve(target.path, name, selector, sort)
        annotation = _annotation(target, name, resolution.commit)
        if path is None and annotation is None and resolution.version is not None:
            head = _annotation(target, name, None)
            path = head.path if head is not None and head.path else None
    labels = Labels.of(resolution)
    spec = FetchSpec(
        repo,
        resolution.commit,
        name,
        dest,
        path,
        labels.version,
        labels.stage,
        limits,
        labels.registration_tag,
        labels.assignment_tag,
    )
    return Selected(fetch(spec, progress=progress), resolution, annotation)


def _resolve(path: str, name: str, selector: Selector, sort: str) -> Resolution:
    if selector.rev is not None:
        return Resolution(name, selector.rev)
    from gitstage.adapters.git.reader import read_registry

    try:
        return resolve(read_registry(path).state, name, selector, Sort(sort))
    except (SelectionError, ArtifactNotFoundError) as error:
        raise NotFoundError(str(error)) from None


def _annotation(target: ReadTarget, name: str, rev: str | None) -> ArtifactAnnotation | None:
    """The artifacts.yaml entry at `rev` (HEAD when None); None when the rev is not known here."""
    from gitstage.adapters.git.describe import annotation_at
    from gitstage.adapters.git.reader import read_config
    from gitstage.adapters.git.repository import RepositoryError, open_repository

    if target.mirror is not None:
        index_file = read_config(open_repository(target.path)).index
        target.mirror.ensure_blob(rev or "HEAD", index_file)
    try:
        return annotation_at(target.path, name, rev)
    except RepositoryError:
        return None

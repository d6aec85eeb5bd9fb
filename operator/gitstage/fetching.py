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
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitstage.adapters.fetch.credentials import GitCredentials, redact, split_userinfo
from gitstage.adapters.fetch.materialize import materialize
from gitstage.adapters.fetch.progress import Progress
from gitstage.adapters.fetch.resolve import Hop, follow
from gitstage.adapters.fetch.staging import (
    ByteBudget,
    Staging,
    files_intact,
    read_manifest,
    write_manifest,
)
from gitstage.domain.fetch_errors import BadInputError
from gitstage.domain.fetch_manifest import FetchRequest, Manifest
from gitstage.domain.fetch_plan import locate
from gitstage.domain.links import is_valid_rev
from gitstage.domain.names import is_valid_fullname, is_valid_name
from gitstage.domain.repo_paths import safe_relative

ENV_CACHE_DIR = "GITSTAGE_CACHE_DIR"
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class FetchSpec:
    repo: str
    rev: str
    artifact: str
    dest: Path | None = None
    path: str | None = None
    version: str | None = None
    stage: str | None = None
    max_bytes: int | None = None


@dataclass(frozen=True)
class FetchResult:
    location: Path
    dest: Path
    manifest: Manifest
    fetched: bool


def fetch_artifact(
    repo: str,
    commit: str,
    artifact: str,
    dest: str | os.PathLike[str] | None = None,
    path: str | None = None,
    *,
    version: str | None = None,
    stage: str | None = None,
    max_bytes: int | None = None,
) -> Path:
    """The artifact's local path (a file, or a directory), fetched once per commit and cached."""
    spec = FetchSpec(
        repo,
        commit,
        artifact,
        None if dest is None else Path(dest),
        path,
        version,
        stage,
        max_bytes,
    )
    return fetch(spec).location


def fetch(
    spec: FetchSpec, environ: Mapping[str, str] | None = None, progress: bool | None = None
) -> FetchResult:
    """`progress=None` shows progress when stderr is a terminal."""
    env = os.environ if environ is None else environ
    _validate(spec)
    clean_url, user, password = split_userinfo(spec.repo)
    request = FetchRequest(
        repo=redact(clean_url), rev=spec.rev, artifact=spec.artifact, path=spec.path
    )
    dest = (spec.dest or cache_path(spec.rev, spec.artifact, spec.path, env)).absolute()
    existing = read_manifest(dest)
    if existing is not None and existing.request == request and files_intact(dest, existing):
        if (existing.version, existing.stage) != (spec.version, spec.stage):
            existing = existing.relabel(spec.version, spec.stage)
            write_manifest(dest, existing)
        return FetchResult(dest / existing.target, dest, existing, fetched=False)
    credentials = GitCredentials.from_env(env, user, password)
    with tempfile.TemporaryDirectory(prefix="gitstage-fetch-") as work:
        start = Hop(clean_url, spec.rev, spec.artifact, spec.path, credentials)
        chain = follow(start, Path(work), env)
        source = locate(chain.fetched.tree, chain.path)
        meter = Progress(f"fetching {spec.artifact}", None, enabled=progress)
        with Staging(dest, ByteBudget(spec.max_bytes), meter) as staging:
            kind, target = materialize(source, chain, staging, env)
            meter.finish()
            manifest = Manifest(
                artifact=spec.artifact,
                version=spec.version,
                stage=spec.stage,
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


def _validate(spec: FetchSpec) -> None:
    if not spec.repo.strip() or spec.repo.startswith("-"):
        raise BadInputError(f"invalid repository {redact(spec.repo)!r}")
    if not is_valid_rev(spec.rev):
        raise BadInputError(f"invalid revision {spec.rev!r}: give a commit SHA or a tag name")
    if not is_valid_fullname(spec.artifact):
        raise BadInputError(f"invalid artifact name {spec.artifact!r}")
    if spec.path is not None:
        safe_relative(spec.path, "path")
    if spec.stage is not None and not is_valid_name(spec.stage):
        raise BadInputError(f"invalid stage name {spec.stage!r}")
    if spec.max_bytes is not None and spec.max_bytes < 0:
        raise BadInputError("the size limit must not be negative")


def cache_root(environ: Mapping[str, str]) -> Path:
    if environ.get(ENV_CACHE_DIR):
        return Path(environ[ENV_CACHE_DIR])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitstage" / "artifacts"


def cache_path(rev: str, artifact: str, path: str | None, environ: Mapping[str, str]) -> Path:
    """One directory per (commit, artifact, path); the hash keeps sanitized names apart."""
    digest = hashlib.sha256(f"{artifact}\0{path or ''}".encode()).hexdigest()[:12]
    name = f"{_UNSAFE_IN_NAME.sub('_', artifact)}-{digest}"
    return cache_root(environ) / _UNSAFE_IN_NAME.sub("_", rev) / name

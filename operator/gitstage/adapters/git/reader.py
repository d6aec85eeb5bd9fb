"""Read every GTO tag, the commits of versions and artifacts.yaml from a repository, in-process.

One pass over `refs/tags/*` with pygit2: names are matched against GTO's grammar first, so only
GTO-looking refs cost an object read; lightweight tags are dropped as GTO drops them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from gitstage.domain.config import CONFIG_FILE, RegistryConfig, parse_config
from gitstage.domain.events import CommitRecord, Instant, TagRecord
from gitstage.domain.index import ArtifactAnnotation, parse_index
from gitstage.domain.state import RegistryState, build_state
from gitstage.domain.tags import Action, ParsedTag, parse_tag

TAGS_PREFIX = "refs/tags/"


class RepositoryError(RuntimeError):
    """A path that is not a readable git repository, or an object that cannot be read."""


def open_repository(path: str | os.PathLike[str]) -> pygit2.Repository:
    location = pygit2.discover_repository(str(path))
    if location is None:
        raise RepositoryError(f"not a git repository: {path}")
    try:
        return pygit2.Repository(location)
    except pygit2.GitError as error:
        raise RepositoryError(f"cannot open git repository {path}: {error}") from None


@dataclass
class TagScan:
    """GTO tags of a repository: annotated ones with their objects, and `@created` names."""

    annotated: list[tuple[ParsedTag, TagRecord]] = field(default_factory=list)
    reserved: list[str] = field(default_factory=list)


def scan_tags(repo: pygit2.Repository) -> TagScan:
    scan = TagScan()
    for ref in repo.listall_reference_objects():
        ref_name = ref.name
        if not ref_name.startswith(TAGS_PREFIX):
            continue
        parsed = parse_tag(ref_name[len(TAGS_PREFIX) :])
        if parsed is None:
            continue
        if parsed.action is Action.CREATE:
            scan.reserved.append(parsed.name)
            continue
        target = ref.target
        record = _tag_record(repo, target, parsed.name) if isinstance(target, pygit2.Oid) else None
        if record is not None:
            scan.annotated.append((parsed, record))
    return scan


def _tag_record(repo: pygit2.Repository, target: pygit2.Oid, name: str) -> TagRecord | None:
    obj = repo.get(target)
    if not isinstance(obj, pygit2.Tag) or obj.tagger is None:
        return None
    tagger = obj.tagger
    return TagRecord(
        name=name,
        target=str(obj.target),
        tagger_name=tagger.name,
        tagger_email=tagger.email,
        time=Instant(tagger.time, tagger.offset * 60),
        message=obj.message,
    )


def peel_commit(repo: pygit2.Repository, sha: str) -> pygit2.Commit:
    obj = repo.get(sha)
    try:
        if obj is None:
            raise KeyError(sha)
        return obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError, KeyError):
        raise RepositoryError(f"object {sha} is not a readable commit") from None


class GitCommitSource:
    """Commits and artifacts.yaml at commits, for the enrichment step (cached per object)."""

    def __init__(self, repo: pygit2.Repository, index_file: str) -> None:
        self._repo = repo
        self._index_file = index_file
        self._commits: dict[str, CommitRecord] = {}
        self._indexes: dict[str, Mapping[str, ArtifactAnnotation] | None] = {}
        self._blobs: dict[str, Mapping[str, ArtifactAnnotation]] = {}

    @property
    def head(self) -> str | None:
        if self._repo.head_is_unborn:
            return None
        return str(self._repo.head.peel(pygit2.Commit).id)

    def commit(self, sha: str) -> CommitRecord:
        if sha not in self._commits:
            self._commits[sha] = self._read_commit(sha)
        return self._commits[sha]

    def _read_commit(self, sha: str) -> CommitRecord:
        commit = peel_commit(self._repo, sha)
        return CommitRecord(
            sha=str(commit.id),
            time=Instant(commit.commit_time, commit.commit_time_offset * 60),
            message=commit.message,
            author_name=commit.author.name,
            author_email=commit.author.email,
            committer_name=commit.committer.name,
            committer_email=commit.committer.email,
        )

    def index(self, commit_sha: str) -> Mapping[str, ArtifactAnnotation] | None:
        if commit_sha not in self._indexes:
            self._indexes[commit_sha] = self._read_index(commit_sha)
        return self._indexes[commit_sha]

    def _read_index(self, commit_sha: str) -> Mapping[str, ArtifactAnnotation] | None:
        tree = peel_commit(self._repo, commit_sha).tree
        try:
            entry = tree[self._index_file]
        except KeyError:
            return None
        blob_id = str(entry.id)
        if blob_id not in self._blobs:
            blob = self._repo.get(entry.id)
            if not isinstance(blob, pygit2.Blob):
                return None
            self._blobs[blob_id] = parse_index(blob.data, f"commit {commit_sha[:7]}")
        return self._blobs[blob_id]


def read_config(
    repo: pygit2.Repository, environ: Mapping[str, str] | None = None
) -> RegistryConfig:
    """`.gto` from the working tree, as GTO reads it (bare repositories have none)."""
    env = os.environ if environ is None else environ
    text = None
    if repo.workdir:
        path = Path(repo.workdir) / CONFIG_FILE
        if path.is_file():
            text = path.read_text(encoding="utf-8")
        return parse_config(text, str(path), env)
    return parse_config(None, CONFIG_FILE, env)


@dataclass
class Registry:
    """A repository's registry state with the configuration that shapes its views."""

    state: RegistryState
    config: RegistryConfig
    head: str | None


def read_registry(path: str | os.PathLike[str] = ".") -> Registry:
    repo = open_repository(path)
    config = read_config(repo)
    source = GitCommitSource(repo, config.index)
    scan = scan_tags(repo)
    state = build_state(scan.annotated, source, scan.reserved)
    return Registry(state=state, config=config, head=source.head)

"""Read every GTO tag, the commits of versions and artifacts.yaml from a repository, in-process.

`read_registry` lists refs by reading git's ref files (refdb.py) and takes what it needs from
tag objects, commits and artifacts.yaml blobs from the persistent object cache
(object_cache.py); only objects it has never seen are read through pygit2, which is imported
then and only then. Tag names are matched against GTO's grammar first, so only GTO-looking refs
cost an object read; lightweight tags are dropped as GTO drops them.

The pygit2 entry points (`scan_tags`, `GitCommitSource`, and `open_repository` in
repository.py) serve the write and
policy paths, which need a libgit2 repository anyway.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitstage.adapters.git.blobs import blob_size, read_blob
from gitstage.adapters.git.gc_pause import gc_paused
from gitstage.adapters.git.loose_objects import loose_tag_row
from gitstage.adapters.git.object_cache import ObjectCache, Row
from gitstage.adapters.git.raw_tags import tagger_zone_as_written
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.adapters.git.source import RegistrySource, config_text_in, open_source
from gitstage.domain.registry.config import RegistryConfig, WrongConfigError, parse_config
from gitstage.domain.registry.events import CommitRecord, Instant, TagRecord
from gitstage.domain.registry.files import CONFIG_FILE
from gitstage.domain.registry.index import ArtifactAnnotation, CorruptIndexError, parse_index
from gitstage.domain.registry.state import RegistryError, RegistryState, build_state
from gitstage.domain.registry.tags import Action, ParsedTag, parse_tag
from gitstage.domain.yaml_bounds import MAX_BYTES

if TYPE_CHECKING:
    import pygit2

    from gitstage.adapters.git.commit_objects import CommitRead
    from gitstage.adapters.git.tag_stream import TagStream

TAGS_PREFIX = "refs/tags/"
LOOSE_FIRST_MAX = 64  # more new tags than this came in a pack: libgit2 reads them faster
COMMITS_MIN = 64  # fewer new commits than this: libgit2 reads them before git has started
STREAM_MIN = 2_000  # fewer tag objects than this: libgit2 reads them before git has started
# (Below both, the git streams are not even imported: subprocess and threading cost the
# commonest read, one new tag, 20 ms.)
# What `read_registry` raises for a registry it cannot read completely (each message one line).
READ_ERRORS: tuple[type[Exception], ...] = (
    RepositoryError,
    WrongConfigError,
    CorruptIndexError,
    RegistryError,
)


# -- objects: from the cache, else from git -----------------------------------------------------


class ObjectReader:
    """Tag objects, commits and artifacts.yaml by object id, through the object cache.

    `repo` is opened (and pygit2 imported) on the first object the cache does not hold.
    """

    def __init__(
        self,
        git_dir: str,
        cache: ObjectCache,
        repo: pygit2.Repository | None = None,
        common_dir: str | None = None,
    ) -> None:
        self._git_dir = git_dir
        self._common_dir = common_dir or git_dir
        self.cache = cache
        self._repo = repo
        self._stream: TagStream | None = None
        self._last_peeled: tuple[str, pygit2.Commit] | None = None
        # False once an object was not found (a partial clone): answers may change without refs.
        self.complete = True

    @property
    def repo(self) -> pygit2.Repository:
        if self._repo is None:
            self._repo = open_repository(self._git_dir)
        return self._repo

    def tag_rows(self, oids: Collection[str]) -> dict[str, Row]:
        """oid -> (target, tagger name, email, seconds, offset, message), or None if the object
        is not an annotated tag with a tagger (lightweight tags point at commits). Objects
        missing from the repository are missing from the answer."""
        rows = self.cache.take("tags", oids)
        missing = [oid for oid in oids if oid not in rows]
        if missing:
            self._start_stream(missing)
            rows.update(self._read_tags(missing))
        return rows

    def prefetch_tags(self, oids: Collection[str]) -> None:
        """Have git start sending the tag objects among `oids` that the cache lacks, in that
        order, while the caller does other work (tag_rows then takes them from the stream)."""
        if len(oids) >= STREAM_MIN:
            self._start_stream(self.cache.missing("tags", dict.fromkeys(oids)))

    def _start_stream(self, oids: list[str]) -> None:
        if self._stream is None and len(oids) >= STREAM_MIN:
            from gitstage.adapters.git.tag_stream import TagStream

            self._stream = TagStream.start(self._git_dir, self._common_dir, oids)

    def prefetch_commits(self, shas: Collection[str], index_path: str) -> CommitRead | None:
        """Have git start reading the commits among `shas` the cache lacks, and look for
        `index_path` in them (commit_objects.py); `take_commits` puts what it answered in the
        cache, where the enrichment step finds it. A few are left to libgit2, as is anything
        git does not answer."""
        missing = self.cache.missing("commits", shas)
        if len(missing) < COMMITS_MIN:
            return None
        from gitstage.adapters.git.commit_objects import CommitRead

        return CommitRead.start(self._git_dir, self._common_dir, missing, index_path)

    def take_commits(self, read: CommitRead | None) -> None:
        if read is not None:
            scan = read.result()
            self.cache.put_rows("commits", scan.commits)
            self.cache.put_rows("trees", scan.trees)

    def close(self) -> None:
        """Stop a stream of tag objects this read no longer needs (a read that failed)."""
        if self._stream is not None:
            self._stream.close()

    def _read_tags(self, oids: list[str]) -> dict[str, Row]:
        """Rows of the objects present; an absent one has none (its tag cannot be read)."""
        rows: dict[str, Row] = {}
        if self._stream is not None:
            rows = self._stream.take(oids)
            self.cache.put_rows("tags", rows)
            oids = [oid for oid in oids if oid not in rows]
            if not oids:
                return rows
        if len(oids) <= LOOSE_FIRST_MAX:  # a few new tags: likely loose, read without libgit2
            for oid in oids:
                known, row = loose_tag_row(self._common_dir, oid)
                if known:
                    rows[oid] = row
                    self.cache.put("tags", oid, row)
            oids = [oid for oid in oids if oid not in rows]
            if not oids:
                return rows
        import pygit2

        repo = self.repo
        for oid in oids:
            obj = repo.get(oid)
            if obj is None:  # never remembered: a repair or a fetch may bring it
                continue
            row = libgit2_tag_row(obj) if isinstance(obj, pygit2.Tag) else None
            rows[oid] = row
            self.cache.put("tags", oid, row)
        return rows

    def commit_row(self, sha: str) -> Row:
        found, row = self.cache.get("commits", sha)
        if not found:
            commit = self._peel(sha)
            author, committer = commit.author, commit.committer
            row = (
                str(commit.id),
                commit.commit_time,
                commit.commit_time_offset * 60,
                commit.message,
                author.name,
                author.email,
                committer.name,
                committer.email,
            )
            self.cache.put("commits", sha, row)
        return row

    def _peel(self, sha: str) -> pygit2.Commit:
        """peel_commit, remembering the last answer: the enrichment step reads a version's
        commit, then artifacts.yaml in it."""
        if self._last_peeled is None or self._last_peeled[0] != sha:
            self._last_peeled = (sha, peel_commit(self.repo, sha))
        return self._last_peeled[1]

    def blob_id_at(self, commit_sha: str, path: str) -> str | None:
        """The blob at `path` in a commit; None if there is none, or it is not here (yet)."""
        key = f"{commit_sha}:{path}"
        found, blob_id = self.cache.get("trees", key)
        if found:
            return blob_id  # type: ignore[no-any-return]
        import pygit2

        try:
            entry = self._peel(commit_sha).tree[path]
        except KeyError:
            self.cache.put("trees", key, None)
            return None
        if not isinstance(entry, pygit2.Blob):
            self.cache.put("trees", key, None)
            return None
        if self.repo.get(entry.id) is None:  # a blobless clone without it: may arrive later
            self.complete = False
            return None
        self.cache.put("trees", key, str(entry.id))
        return str(entry.id)

    def index_at(self, blob_id: str, where: str) -> dict[str, ArtifactAnnotation]:
        found, row = self.cache.get("indexes", blob_id)
        if found:
            return {name: ArtifactAnnotation(*fields) for name, fields in row.items()}
        size = blob_size(self.repo, blob_id)
        if size is not None and size > MAX_BYTES:  # refused before libgit2 inflates it
            raise CorruptIndexError(where, f"{size} bytes, over the limit of {MAX_BYTES}")
        data = read_blob(self.repo, blob_id, MAX_BYTES, f"object {blob_id}")
        if data is None:
            raise RepositoryError(f"object {blob_id} is not a readable blob")
        index = parse_index(data, where)
        self.cache.put("indexes", blob_id, {name: _fields(a) for name, a in index.items()})
        return index


def libgit2_tag_row(tag: pygit2.Tag) -> Row:
    """A tag's row through libgit2, its tagger's zone as GTO reads it (raw_tags.py): libgit2
    gives 0 for a zone past 14 hours or 59 minutes, so a 0 is looked up in the raw text."""
    tagger = tag.tagger
    if tagger is None:
        return None
    offset = tagger.offset * 60
    if offset == 0:
        offset = tagger_zone_as_written(tag.read_raw()) or 0
    return (str(tag.target), tagger.name, tagger.email, tagger.time, offset, tag.message)


def _fields(annotation: ArtifactAnnotation) -> tuple[object, ...]:
    a = annotation
    return (a.type, a.path, a.virtual, list(a.labels), a.description, a.custom)


def peel_commit(repo: pygit2.Repository, sha: str) -> pygit2.Commit:
    import pygit2

    obj = repo.get(sha)
    try:
        if obj is None:
            raise KeyError(sha)
        return obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError, KeyError):
        raise RepositoryError(f"object {sha} is not a readable commit") from None


# -- tags ----------------------------------------------------------------------------------------


@dataclass
class TagScan:
    """GTO tags of a repository: annotated ones with their objects, and `@created` names."""

    annotated: list[tuple[ParsedTag, TagRecord]] = field(default_factory=list)
    reserved: list[str] = field(default_factory=list)


def scan_refs(
    tags: Mapping[str, str],
    objects: ObjectReader,
    names: Mapping[str, ParsedTag | None] | None = None,
) -> TagScan:
    """`tags`: tag name -> the object id its ref points at; `names`: tag names already parsed
    (parse_tag's answers), when the caller has them."""
    scan = TagScan()
    wanted: list[tuple[ParsedTag, str]] = []
    create = Action.CREATE
    for name, oid in tags.items():
        parsed = names[name] if names is not None and name in names else parse_tag(name)
        if parsed is None:
            continue
        if parsed.action is create:
            scan.reserved.append(parsed.name)
        else:
            wanted.append((parsed, oid))
    rows = objects.tag_rows([oid for _, oid in wanted])
    annotated = scan.annotated
    for parsed, oid in wanted:
        if oid not in rows:  # never skipped: that would silently answer with an older holder
            raise RepositoryError(f"tag {parsed.name} points to object {oid}, which is missing")
        row = rows[oid]
        if row is not None:
            target, name, email, seconds, offset, message = row
            record = TagRecord(parsed.name, target, name, email, Instant(seconds, offset), message)
            annotated.append((parsed, record))
    return scan


def scan_tags(repo: pygit2.Repository) -> TagScan:
    """Every tag of a libgit2 repository (no object cache)."""
    import pygit2

    tags = {}
    for ref in repo.listall_reference_objects():
        if ref.name.startswith(TAGS_PREFIX) and isinstance(ref.target, pygit2.Oid):
            tags[ref.name[len(TAGS_PREFIX) :]] = str(ref.target)
    return scan_refs(tags, ObjectReader(repo.path, ObjectCache(None), repo))


# -- commits and artifacts.yaml for the enrichment step -----------------------------------------


class CachedCommitSource:
    """Commits and artifacts.yaml at commits (the state's CommitSource), memoized per read."""

    def __init__(self, objects: ObjectReader, index_file: str, head_oid: str | None) -> None:
        self._objects = objects
        self._index_file = index_file
        self._head_oid = head_oid
        self._commits: dict[str, CommitRecord] = {}
        self._indexes: dict[str, Mapping[str, ArtifactAnnotation] | None] = {}

    @property
    def head(self) -> str | None:
        if self._head_oid is None:
            return None
        try:
            return self.commit(self._head_oid).sha
        except RepositoryError:
            raise RepositoryError(
                f"HEAD points to {self._head_oid}, which is not a readable commit"
            ) from None

    def commit(self, sha: str) -> CommitRecord:
        record = self._commits.get(sha)
        if record is None:
            peeled, seconds, offset, message, *people = self._objects.commit_row(sha)
            record = CommitRecord(peeled, Instant(seconds, offset), message, *people)
            self._commits[sha] = record
        return record

    def index(self, commit_sha: str) -> Mapping[str, ArtifactAnnotation] | None:
        if commit_sha not in self._indexes:
            blob_id = self._objects.blob_id_at(commit_sha, self._index_file)
            self._indexes[commit_sha] = (
                None
                if blob_id is None
                else self._objects.index_at(blob_id, f"commit {commit_sha[:7]}")
            )
        return self._indexes[commit_sha]


class GitCommitSource(CachedCommitSource):
    """A CommitSource over a libgit2 repository, without the persistent cache."""

    def __init__(self, repo: pygit2.Repository, index_file: str) -> None:
        objects = ObjectReader(repo.path, ObjectCache(None), repo)
        super().__init__(objects, index_file, head_commit(repo))


def head_commit(repo: pygit2.Repository) -> str | None:
    """The commit HEAD names; None on an unborn branch; RepositoryError when it is missing."""
    import pygit2

    try:
        if repo.head_is_unborn:
            return None
        head = repo.head
        target = str(head.target)
    except (KeyError, ValueError, OSError, pygit2.GitError) as error:  # libgit2 says OSError too
        raise RepositoryError(f"HEAD cannot be read: {error}") from None
    try:
        return str(head.peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError):
        raise RepositoryError(f"HEAD points to {target}, which is not a readable commit") from None


# -- configuration and the registry --------------------------------------------------------------


def read_config(
    repo: pygit2.Repository, environ: Mapping[str, str] | None = None
) -> RegistryConfig:
    """`.gto` from the working tree, as GTO reads it (bare repositories have none)."""
    return read_config_in(repo.workdir, environ)


def read_config_in(workdir: str | None, environ: Mapping[str, str] | None = None) -> RegistryConfig:
    return parse_config_text(config_text_in(workdir), workdir, environ)


def parse_config_text(
    text: str | None, workdir: str | None, environ: Mapping[str, str] | None = None
) -> RegistryConfig:
    env = os.environ if environ is None else environ
    path = str(Path(workdir) / CONFIG_FILE) if workdir else CONFIG_FILE
    return parse_config(text, path, env)


@dataclass
class Registry:
    """A repository's registry state with the configuration that shapes its views.

    `complete` is False when an object the read needed was missing (a partial clone).
    """

    state: RegistryState
    config: RegistryConfig
    head: str | None
    complete: bool = True


def read_registry(path: str | os.PathLike[str] = ".") -> Registry:
    return read_source(open_source(path))


def read_source(source: RegistrySource) -> Registry:
    with gc_paused():
        return _read_source(source)


def _read_source(source: RegistrySource) -> Registry:
    config = parse_config_text(source.config_text, source.dirs.workdir)
    dirs = source.dirs
    objects = ObjectReader(dirs.git_dir, ObjectCache.open(dirs.common_dir), None, dirs.common_dir)
    try:
        scan = scan_refs(source.tags, objects)
        commits = CachedCommitSource(objects, config.index, source.head_oid)
        state = build_state(scan.annotated, commits, scan.reserved)
        head = commits.head
    finally:
        objects.close()
        objects.cache.save()
    return Registry(state=state, config=config, head=head, complete=objects.complete)

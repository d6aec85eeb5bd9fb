"""Incremental reads: refold only the artifacts whose tag refs changed since the last read.

`fold_groups` folds a set of artifacts (partition.py's groups) in one pass; `IncrementalReader`
keeps each artifact's folded state between reads of one repository (the operator's mirrors and
`gitstage ui` hold one per repository), so a new stage tag costs a ref listing plus the fold of
the artifact it names. Everything is refolded when HEAD or `.gto` moves (they reach every
artifact). A read that fails is repeated in full, which names the problem exactly as a cold
read (and GTO) would; nothing from a failed or incomplete read is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitstage.adapters.git.gc_pause import (
    collect_before_keeping,
    gc_paused,
    keep_out_of_collections,
)
from gitstage.adapters.git.object_cache import ObjectCache, release
from gitstage.adapters.git.reader import (
    READ_ERRORS,
    CachedCommitSource,
    ObjectReader,
    Registry,
    TagScan,
    parse_config_text,
    read_source,
    scan_refs,
)
from gitstage.adapters.git.refdb import PackedRefsMemo
from gitstage.adapters.git.source import RegistrySource
from gitstage.domain.registry.config import RegistryConfig
from gitstage.domain.registry.events import TagRecord
from gitstage.domain.registry.names import tag_to_name
from gitstage.domain.registry.partition import (
    Groups,
    OrderKey,
    Partition,
    first_appearance,
    group_digest,
    group_tags,
    head_order,
    with_head_artifacts,
)
from gitstage.domain.registry.state import Artifact, RegistryState, build_state
from gitstage.domain.registry.tags import Action, ParsedTag, parse_tag

if TYPE_CHECKING:
    from gitstage.adapters.git.commit_objects import CommitRead

BATCH_TAGS = 20_000
LARGE_REGISTRY_TAGS = 20_000  # from here a refold of FEW_TAGS skips the object cache file
FEW_TAGS = 2_000


@dataclass(frozen=True)
class FoldedGroup:
    """One group's fold: where its artifact comes in the state, and the artifact (None when
    the group holds only tags GTO ignores)."""

    order: OrderKey | None
    artifact: Artifact | None


@dataclass
class ReadContext:
    """What a read shares across its groups: configuration, objects, HEAD's artifacts, and the
    tag names already parsed (`names`: those of the groups to fold, or none)."""

    config: RegistryConfig
    objects: ObjectReader
    commits: CachedCommitSource
    head: str | None
    head_artifacts: list[str]
    names: Mapping[str, ParsedTag | None] = field(default_factory=dict)


def open_context(
    source: RegistrySource,
    cache: ObjectCache,
    known: tuple[str | None, list[str]] | None = None,
    objects: ObjectReader | None = None,
) -> ReadContext:
    """`known`: HEAD's commit and artifacts.yaml names from an earlier read at the same HEAD
    (then no object is looked up, and the object cache is not even loaded)."""
    config = parse_config_text(source.config_text, source.dirs.workdir)
    if objects is None:
        objects = ObjectReader(source.dirs.git_dir, cache, None, source.dirs.common_dir)
    commits = CachedCommitSource(objects, config.index, source.head_oid)
    if known is not None:
        return ReadContext(config, objects, commits, *known)
    head = commits.head
    index = commits.index(head) if head is not None else None
    return ReadContext(config, objects, commits, head, list(index or ()))


def prefetch(
    groups: Groups, names: Iterable[str], objects: ObjectReader
) -> dict[str, ParsedTag | None]:
    """Have git start sending the tag objects of the named groups (tag_stream.py), then parse
    their tag names while it does: tag name -> parse_tag's answer. Every tag of a group is
    asked for, GTO's or not (a name the fold ignores costs git one object it sends for
    nothing): waiting for the parse would start git 0.3 s later on a large registry."""
    groups_ = [groups[group] for group in names]
    objects.prefetch_tags([oid for members in groups_ for oid in members.values()])
    return {tag: parse_tag(tag) for members in groups_ for tag in members}


def fold_groups(
    groups: Groups, names: Iterable[str], context: ReadContext
) -> dict[str, FoldedGroup]:
    """Fold the named groups: group -> its FoldedGroup. Groups are folded in batches of about
    BATCH_TAGS tags (each a scan and a fold): a fold sorts its tags in one C call that holds
    the GIL, 90 ms for 120,000 tags, and the operator's event loop waits for the GIL. Each
    batch is scanned before the previous one is folded, so that git reads the commits of
    its versions meanwhile (a read that fails is named by a full read anyway)."""
    folded: dict[str, FoldedGroup] = {}
    scans: list[_Scanned] = []
    try:
        for batch in _batches(groups, names):
            scans.append(_scan_batch(groups, batch, context))
            if len(scans) > 1:
                folded.update(_fold_batch(scans.pop(0), context))
        if scans:
            folded.update(_fold_batch(scans[-1], context))
    finally:
        for scanned in scans:  # after a failure: stop git, whatever it was doing
            if scanned.commits is not None:
                scanned.commits.close()
    return folded


def _batches(groups: Groups, names: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for name in names:
        batch.append(name)
        size += len(groups[name])
        if size >= BATCH_TAGS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@dataclass
class _Scanned:
    """A batch's groups, its GTO tags, and git reading the commits of its versions."""

    names: list[str]
    scan: TagScan
    commits: CommitRead | None


def _scan_batch(groups: Groups, names: list[str], context: ReadContext) -> _Scanned:
    tags = {tag: oid for group in names for tag, oid in groups[group].items()}
    scan = scan_refs(tags, context.objects, context.names or None)
    # Every tag but a deprecation makes its target a version, whose commit is enriched.
    versions = {r.target for p, r in scan.annotated if p.action is not Action.DEPRECATE}
    return _Scanned(names, scan, context.objects.prefetch_commits(versions, context.config.index))


def _fold_batch(scanned: _Scanned, context: ReadContext) -> dict[str, FoldedGroup]:
    names, scan = scanned.names, scanned.scan
    context.objects.take_commits(scanned.commits)
    artifacts = {tag_to_name(group) for group in names}
    at_head = artifacts.intersection(context.head_artifacts)
    state = build_state(scan.annotated, context.commits, scan.reserved, head_artifacts=at_head)
    by_artifact: dict[str, list[tuple[ParsedTag, TagRecord]]] = {}
    for pair in scan.annotated:
        by_artifact.setdefault(pair[0].artifact, []).append(pair)
    positions = {name: i for i, name in enumerate(context.head_artifacts)}
    folded = {}
    for group in names:
        name = tag_to_name(group)
        order = first_appearance(by_artifact.get(name, ()))
        if order is None and name in at_head:
            order = head_order(positions[name])
        artifact = state.artifacts.get(name)
        folded[group] = FoldedGroup(order if artifact else None, artifact)
    return folded


def assemble(folded: Iterable[FoldedGroup]) -> RegistryState:
    """The state from every group's fold, artifacts in GTO's insertion order."""
    state = RegistryState()
    present = [f for f in folded if f.artifact is not None and f.order is not None]
    for group in sorted(present, key=lambda f: f.order or ()):
        assert group.artifact is not None
        state.artifacts[group.artifact.name] = group.artifact
    return state


@dataclass(frozen=True)
class Refold:
    """One incremental read: its context, every group's digest, and the groups refolded."""

    context: ReadContext
    digests: dict[str, bytes]
    folded: dict[str, FoldedGroup]


def refold_changed(
    source: RegistrySource,
    known_head: tuple[str | None, list[str]] | None,
    held: Mapping[str, bytes],
    *,
    free_rows: bool = False,
    partition: Partition | None = None,
) -> Refold:
    """Fold the groups whose digest differs from `held` (group -> digest of the last read).
    The object cache is loaded only if something is refolded, and saved; `free_rows` frees its
    rows one by one afterwards (for long-lived processes, see object_cache.release).
    `partition`: the groups of the last read at this HEAD, updated here (None: group anew)."""
    dirs = source.dirs
    if known_head is not None:  # HEAD's artifacts known: the stale groups are, before any object
        groups, digests = _partitioned(source, known_head[1], partition)
        stale = [g for g, d in digests.items() if held.get(g) != d]
        cache = _cache_for(source, sum(len(groups[g]) for g in stale))
    else:
        cache = ObjectCache.open_lazily(dirs.common_dir)
    objects = ObjectReader(dirs.git_dir, cache, None, dirs.common_dir)
    try:
        if known_head is not None:
            names = prefetch(groups, stale, objects)
            context = open_context(source, cache, known_head, objects)
        else:
            groups = group_tags(source.tags)
            digests = {group: group_digest(members) for group, members in groups.items()}
            names = prefetch(groups, [g for g, d in digests.items() if held.get(g) != d], objects)
            context = open_context(source, cache, None, objects)
            with_head_artifacts(groups, context.head_artifacts)  # empty groups, after the others
            digests.update((g, group_digest(m)) for g, m in groups.items() if g not in digests)
            stale = [g for g, d in digests.items() if held.get(g) != d]
        context.names = names
        folded = fold_groups(groups, stale, context) if stale else {}
    finally:
        objects.close()
        cache.save()
        if free_rows:
            release(cache)
    return Refold(context, digests, folded)


def _partitioned(
    source: RegistrySource, head_artifacts: list[str], partition: Partition | None
) -> tuple[Groups, dict[str, bytes]]:
    if partition is None:
        groups = with_head_artifacts(group_tags(source.tags), head_artifacts)
        return groups, {group: group_digest(members) for group, members in groups.items()}
    partition.update(source.tags, head_artifacts)
    return partition.groups, dict(partition.digests)


def _cache_for(source: RegistrySource, stale_tags: int) -> ObjectCache:
    """The object cache, or none for a refold of a few tags in a large registry: reading their
    objects costs less than loading and saving the whole cache (12 MB at 120,000 tags, 0.2 s
    per push); the rows are not written, so a later cold read reads those few again."""
    if len(source.tags) >= LARGE_REGISTRY_TAGS and stale_tags <= FEW_TAGS:
        return ObjectCache(None, keep_unused=True)
    return ObjectCache.open_lazily(source.dirs.common_dir)


@dataclass(frozen=True)
class _Held:
    digest: bytes
    folded: FoldedGroup


class IncrementalReader:
    """One repository's registry, refolding only the artifacts whose tags changed."""

    def __init__(self) -> None:
        self._basis: tuple[str | None, str | None, str | None] | None = None
        self._head: tuple[str | None, list[str]] | None = None
        self._held: dict[str, _Held] = {}
        self._partition = Partition()
        self._packed = PackedRefsMemo()  # a push adds loose refs: packed-refs is parsed once
        self.refolded = 0  # groups folded by the last read (for tests and benchmarks)

    def read(self, source: RegistrySource) -> Registry:
        """The registry; the state is kept for the next read and out of the collector's way."""
        collect_before_keeping()
        try:
            with gc_paused():
                registry = self._read(source)
                # Before the collector is back: its first run would walk the whole new state.
                keep_out_of_collections()
        except READ_ERRORS:
            self._forget()
            return read_source(source)  # raises the first problem as a full read names it
        return registry

    @property
    def packed_refs(self) -> PackedRefsMemo:
        """For `open_source`: the parsed packed-refs of the last read, while unchanged."""
        return self._packed

    def _forget(self) -> None:
        self._basis, self._head, self._held = None, None, {}
        self._partition = Partition()

    def _read(self, source: RegistrySource) -> Registry:
        basis = (source.head_oid, source.config_text, source.dirs.workdir)
        if basis != self._basis:
            self._forget()
        known = {group: held.digest for group, held in self._held.items()}
        read = refold_changed(source, self._head, known, free_rows=True, partition=self._partition)
        context, digests, folded = read.context, read.digests, read.folded
        held = {g: self._held[g] for g in digests if g not in folded}
        held.update((g, _Held(digests[g], f)) for g, f in folded.items())
        state = assemble(h.folded for h in held.values())
        self.refolded = len(folded)
        if context.objects.complete:
            self._basis, self._held = basis, held
            self._head = (context.head, context.head_artifacts)
        else:
            self._forget()  # an object may arrive later: nothing from this read is trusted
        return Registry(state, context.config, context.head, context.objects.complete)

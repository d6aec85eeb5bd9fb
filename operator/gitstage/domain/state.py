"""GTO's registry state: artifacts, their versions and per-version stages, folded from events.

The object model and every ordering rule mirror gto/base.py, gto/tag.py and gto/index.py at 1.10.1,
because GTO's answers depend on them: stable sorts by whole seconds followed by a reversal decide
same-second ties, and version lookup by commit skips "discovered" versions (which is why a stage
tag on an unregistered commit creates two versions named by the commit SHA).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Protocol, TypeVar, cast

from gitstage.domain.events import (
    CommitRecord,
    Event,
    EventKind,
    TagRecord,
    commit_event,
    tag_event,
)
from gitstage.domain.index import ArtifactAnnotation
from gitstage.domain.tags import Action, ParsedTag

T = TypeVar("T")


class RegistryError(ValueError):
    """A history GTO itself cannot read; the message names the offending tags."""


def newest_first(events: Iterable[Event]) -> list[Event]:
    """GTO's `sorted(events, key=created_at)[::-1]`: among equal seconds, the last one wins."""
    return sorted(events, key=_seconds)[::-1]


def _seconds(event: Event) -> int:
    return event.time.seconds


def _insert_sorted(events: list[Event], event: Event) -> None:
    """Append then stable-sort by time, as GTO does after every event."""
    if not events or events[-1].time.seconds <= event.time.seconds:
        events.append(event)
    else:
        bisect.insort_right(events, event, key=_seconds)


class VStage:
    """One version's history in one stage."""

    def __init__(self, artifact: str, version: str, commit: str, stage: str) -> None:
        self.artifact = artifact
        self.version = version
        self.commit = commit
        self.stage = stage
        self.assignments: list[Event] = []
        self.unassignments: list[Event] = []
        self._events: list[Event] | None = None

    def add(self, event: Event) -> None:
        target = self.assignments if event.kind is EventKind.ASSIGNMENT else self.unassignments
        _insert_sorted(target, event)
        self._events = None

    def events(self) -> list[Event]:
        """Newest first; an unassignment wins a same-second tie with an assignment."""
        if self._events is None:
            self._events = newest_first(self.assignments + self.unassignments)
        return self._events

    @property
    def is_active(self) -> bool:
        return self.events()[0].kind is EventKind.ASSIGNMENT

    @property
    def activated_seconds(self) -> int:
        return self.events()[0].time.seconds

    @property
    def authoring_event(self) -> Event:
        return next(e for e in self.events() if e.kind.addition)


class Version:
    """A version of an artifact: registered (`A@vX`) or named by its commit SHA."""

    def __init__(self, artifact: str, name: str, commit: str) -> None:
        self.artifact = artifact
        self.name = name
        self.commit = commit
        self.commit_events: list[Event] = []
        self.registrations: list[Event] = []
        self.deregistrations: list[Event] = []
        self.stages: dict[str, VStage] = {}
        # Derived views are cached until the next event: the state is read far more than built.
        self._memo: dict[str, Any] = {}

    def _memoized(self, key: str, compute: Callable[[], T]) -> T:
        try:
            return cast(T, self._memo[key])
        except KeyError:
            value = self._memo[key] = compute()
            return value

    def add(self, event: Event) -> None:
        self._memo.clear()
        if event.kind is EventKind.REGISTRATION:
            _insert_sorted(self.registrations, event)
        elif event.kind is EventKind.DEREGISTRATION:
            _insert_sorted(self.deregistrations, event)
        elif event.kind is EventKind.COMMIT:
            if event not in self.commit_events:
                _insert_sorted(self.commit_events, event)
        else:
            stage = str(event.stage)
            if stage not in self.stages:
                self.stages[stage] = VStage(self.artifact, self.name, self.commit, stage)
            self.stages[stage].add(event)

    @property
    def peeled_commit(self) -> str:
        """The commit behind the version: a tag-of-tag target is peeled by the enrichment step."""
        return self.commit_events[0].commit if self.commit_events else self.commit

    def direct_events(self) -> list[Event]:
        return self._memoized(
            "direct", lambda: newest_first(self.registrations + self.deregistrations)
        )

    def _stage_events(self) -> list[Event]:
        return [e for s in self.stages.values() for e in s.events()]

    def indirect_events(self) -> list[Event]:
        return self._memoized(
            "indirect", lambda: newest_first(self.commit_events + self._stage_events())
        )

    def events(self) -> list[Event]:
        return self._memoized(
            "all",
            lambda: newest_first(
                self.registrations
                + self.deregistrations
                + self.commit_events
                + self._stage_events()
            ),
        )

    @property
    def discovered(self) -> bool:
        """No registration and no deregistration: known only from stage tags or artifacts.yaml."""
        return not self.registrations and not self.deregistrations

    @property
    def is_registered(self) -> bool:
        return bool(self.registrations)

    @property
    def is_active(self) -> bool:
        return self._memoized("active", self._compute_active)

    def _compute_active(self) -> bool:
        direct = self.direct_events()
        if direct:
            return direct[0].kind is EventKind.REGISTRATION
        return bool(self.commit_events or self.stages)

    @property
    def activated_event(self) -> Event:
        if self.registrations:
            return self.registrations[0]
        everything = (
            self.registrations + self.deregistrations + self.commit_events + self._stage_events()
        )
        return sorted(everything, key=_seconds)[0]

    @property
    def authoring_event(self) -> Event:
        return self._memoized("authoring", self._compute_authoring)

    def _compute_authoring(self) -> Event:
        additions = [e for e in self.direct_events() if e.kind.addition]
        return additions[0] if additions else self.indirect_events()[0]

    def active_stages(self) -> list[VStage]:
        """Active stages, oldest activation first (GTO `get_vstages(ascending=True)`)."""
        return self._memoized("stages", self._compute_active_stages)

    def _compute_active_stages(self) -> list[VStage]:
        active = [s for s in self.stages.values() if s.is_active]
        return sorted(active, key=lambda s: s.activated_seconds)


class Artifact:
    def __init__(self, name: str) -> None:
        self.name = name
        self.versions: list[Version] = []
        self.deprecations: list[Event] = []
        # Versions with a registration or deregistration, by commit: GTO's lookups skip the rest.
        self._explicit_by_commit: dict[str, list[Version]] = {}

    def events(self) -> list[Event]:
        """Computed on each call: versions change under the artifact while the state is built."""
        version_events = [e for v in self.versions for e in v.events()]
        return newest_first(self.deprecations + version_events)

    @property
    def is_active(self) -> bool:
        """Not deprecated: the newest event (a version's event wins a same-second tie)."""
        newest_deprecation = max((e.time.seconds for e in self.deprecations), default=None)
        if newest_deprecation is None:
            return any(v.events() for v in self.versions)
        newest_version_event = max(
            (v.events()[0].time.seconds for v in self.versions if v.events()), default=None
        )
        return newest_version_event is not None and newest_version_event >= newest_deprecation

    @property
    def is_registered(self) -> bool:
        """Known from at least one tag, not only from artifacts.yaml."""
        return bool(self.deprecations) or any(
            v.registrations or v.deregistrations or v.stages for v in self.versions
        )

    def carrier_of(self, vstage: VStage) -> Version:
        """The Version object that holds `vstage` (SHA-named versions come in look-alike pairs)."""
        return next(v for v in self.versions if v.stages.get(vstage.stage) is vstage)

    def explicit_versions_at(self, commit: str) -> list[Version]:
        return self._explicit_by_commit.get(commit, [])

    def find_or_create(self, commit: str, name: str | None = None) -> Version:
        """GTO's `find_version(name, commit_hexsha, create_new=True)` over explicit versions."""
        found = self._explicit_by_commit.get(commit, [])
        if name is not None and found:
            found = [v for v in found if v.name == name]
        if len(found) > 1:
            raise _many_versions(self.name, commit, found)
        if found:
            return found[0]
        version = Version(self.name, name or commit, commit)
        self.versions.append(version)
        return version

    def add(self, event: Event, version: Version) -> None:
        was_discovered = version.discovered
        version.add(event)
        if was_discovered and not version.discovered:
            self._explicit_by_commit.setdefault(version.commit, []).append(version)


def without_tags(artifact: Artifact, tags: AbstractSet[str]) -> Artifact:
    """The artifact as if the tags named in `tags` did not exist (to look past refused ones).

    Events keep their order; a version known only from those tags disappears with them.
    """
    copy = Artifact(artifact.name)
    copy.deprecations = [e for e in artifact.deprecations if e.tag not in tags]
    for version in artifact.versions:
        stage_events = [e for s in version.stages.values() for e in s.assignments + s.unassignments]
        tagged = version.registrations + version.deregistrations + stage_events
        kept = [e for e in tagged if e.tag not in tags]
        if tagged and not kept:
            continue
        clone = Version(artifact.name, version.name, version.commit)
        copy.versions.append(clone)
        for event in [*kept, *version.commit_events]:
            copy.add(event, clone)
    return copy


def _many_versions(artifact: str, commit: str, versions: list[Version]) -> RegistryError:
    tags = sorted({e.ref for v in versions for e in v.registrations + v.deregistrations})
    return RegistryError(
        f"multiple versions of artifact '{artifact}' on commit {commit[:7]} "
        f"({', '.join(tags)}): GTO refuses to read such a registry; remove all but one"
    )


class CommitSource(Protocol):
    """What the enrichment step reads from git; implemented by the git adapter."""

    @property
    def head(self) -> str | None: ...

    def commit(self, sha: str) -> CommitRecord: ...

    def index(self, commit_sha: str) -> Mapping[str, ArtifactAnnotation] | None: ...


class RegistryState:
    """All artifacts in GTO's insertion order (first deprecation, version or stage tag)."""

    def __init__(self) -> None:
        self.artifacts: dict[str, Artifact] = {}

    def artifact(self, name: str) -> Artifact:
        if name not in self.artifacts:
            self.artifacts[name] = Artifact(name)
        return self.artifacts[name]

    def events(self) -> Iterator[Event]:
        for artifact in self.artifacts.values():
            yield from artifact.events()


def build_state(
    tags: Iterable[tuple[ParsedTag, TagRecord]],
    source: CommitSource,
    reserved: Iterable[str] = (),
) -> RegistryState:
    """Fold annotated GTO tags into state, then enrich with commits and artifacts.yaml.

    `reserved` names lightweight `@created` tags: GTO fails on those too, annotated or not.
    """
    ordered = sorted(tags, key=lambda pair: (pair[1].time.seconds, pair[0].name))
    created = {parsed.name for parsed, _ in ordered if parsed.action is Action.CREATE}
    created.update(reserved)
    if created:
        raise created_tags_error(sorted(created))
    state = RegistryState()
    _fold_deprecations(state, ordered)
    _fold_versions(state, ordered)
    _fold_stages(state, ordered)
    _enrich_versions(state, source)
    _discover_at_head(state, source)
    return state


def created_tags_error(names: list[str]) -> RegistryError:
    return RegistryError(
        f"reserved '@created' tags {', '.join(sorted(names))} make GTO fail on every command; "
        "delete them"
    )


def _fold_deprecations(state: RegistryState, ordered: list[tuple[ParsedTag, TagRecord]]) -> None:
    for parsed, tag in ordered:
        if parsed.action is Action.DEPRECATE:
            event = tag_event(EventKind.DEPRECATION, tag, parsed.artifact, None, None)
            _insert_sorted(state.artifact(parsed.artifact).deprecations, event)


def _fold_versions(state: RegistryState, ordered: list[tuple[ParsedTag, TagRecord]]) -> None:
    for parsed, tag in ordered:
        if parsed.action in (Action.REGISTER, Action.DEREGISTER):
            kind = (
                EventKind.REGISTRATION
                if parsed.action is Action.REGISTER
                else EventKind.DEREGISTRATION
            )
            artifact = state.artifact(parsed.artifact)
            version = artifact.find_or_create(tag.target, parsed.version)
            artifact.add(tag_event(kind, tag, parsed.artifact, parsed.version, None), version)


def _fold_stages(state: RegistryState, ordered: list[tuple[ParsedTag, TagRecord]]) -> None:
    for parsed, tag in ordered:
        if parsed.action not in (Action.ASSIGN, Action.UNASSIGN):
            continue
        kind = EventKind.ASSIGNMENT if parsed.action is Action.ASSIGN else EventKind.UNASSIGNMENT
        artifact = state.artifact(parsed.artifact)
        try:
            name = artifact.find_or_create(tag.target).name
            holder = artifact.find_or_create(tag.target, name)
        except RegistryError as error:
            raise RegistryError(f"{error}; stage tag {tag.name} points there") from None
        artifact.add(tag_event(kind, tag, parsed.artifact, name, parsed.stage), holder)


def _enrich_versions(state: RegistryState, source: CommitSource) -> None:
    for artifact in state.artifacts.values():
        for version in artifact.versions:
            commit = source.commit(version.commit)
            annotation = _annotation(source, commit.sha, artifact.name)
            version.add(commit_event(artifact.name, version.name, commit, annotation))


def _discover_at_head(state: RegistryState, source: CommitSource) -> None:
    head = source.head
    if head is None:
        return
    index = source.index(head)
    if not index:
        return
    commit = source.commit(head)
    for name, annotation in index.items():
        artifact = state.artifact(name)
        version = artifact.find_or_create(head)
        version.add(commit_event(name, version.name, commit, annotation))


def _annotation(source: CommitSource, commit: str, artifact: str) -> ArtifactAnnotation | None:
    index = source.index(commit)
    return index.get(artifact) if index else None

"""GTO's registry state: artifacts, their versions and per-version stages, folded from events.

The object model and every ordering rule mirror gto/base.py, gto/tag.py and gto/index.py at 1.10.1,
because GTO's answers depend on them: stable sorts by whole seconds followed by a reversal decide
same-second ties, and version lookup by commit skips "discovered" versions (which is why a stage
tag on an unregistered commit creates two versions named by the commit SHA).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from operator import attrgetter
from typing import Protocol

from gitstage.domain.registry.events import (
    CommitRecord,
    Event,
    EventKind,
    Instant,
    TagRecord,
    commit_event,
    tag_event,
)
from gitstage.domain.registry.index import ArtifactAnnotation
from gitstage.domain.registry.tags import Action, ParsedTag


class RegistryError(ValueError):
    """A history GTO itself cannot read; the message names the offending tags."""


class CreatedTagsError(RegistryError):
    """Reserved `@created` tags exist (`gitstage check` reports each as a tag problem)."""


_seconds = attrgetter("time.seconds")


def newest_first(events: Iterable[Event]) -> list[Event]:
    """GTO's `sorted(events, key=created_at)[::-1]`: among equal seconds, the last one wins."""
    return sorted(events, key=_seconds)[::-1]


def _insert_sorted(events: list[Event], event: Event) -> None:
    """Append then stable-sort by time, as GTO does after every event."""
    if not events or events[-1].time.seconds <= event.time.seconds:
        events.append(event)
    else:
        bisect.insort_right(events, event, key=_seconds)


def _newest_seconds(*sorted_lists: list[Event]) -> int | None:
    """The newest time among lists each sorted oldest first."""
    return max((events[-1].time.seconds for events in sorted_lists if events), default=None)


class VStage:
    """One version's history in one stage."""

    __slots__ = (
        "_authoring",
        "_events",
        "artifact",
        "assignments",
        "commit",
        "stage",
        "unassignments",
        "version",
    )

    def __init__(self, artifact: str, version: str, commit: str, stage: str) -> None:
        self.artifact = artifact
        self.version = version
        self.commit = commit
        self.stage = stage
        self.assignments: list[Event] = []
        self.unassignments: list[Event] = []
        self._events: list[Event] | None = None
        self._authoring: Event | None = None

    def add(self, event: Event) -> None:
        target = self.assignments if event.kind is EventKind.ASSIGNMENT else self.unassignments
        _insert_sorted(target, event)
        self._events = self._authoring = None

    def events(self) -> list[Event]:
        """Newest first; an unassignment wins a same-second tie with an assignment."""
        if self._events is None:
            self._events = newest_first(self.assignments + self.unassignments)
        return self._events

    # `events()[0]` without sorting: both lists are sorted oldest first, and in the stable sort
    # of `assignments + unassignments` an unassignment wins a same-second tie.
    @property
    def is_active(self) -> bool:
        assigned, unassigned = self.assignments, self.unassignments
        if not unassigned:
            return True
        return bool(assigned) and assigned[-1].time.seconds > unassigned[-1].time.seconds

    @property
    def activated_seconds(self) -> int:
        assigned, unassigned = self.assignments, self.unassignments
        if not unassigned:
            return assigned[-1].time.seconds
        if not assigned:
            return unassigned[-1].time.seconds
        return max(assigned[-1].time.seconds, unassigned[-1].time.seconds)

    @property
    def authoring_event(self) -> Event:
        """The first addition of `events()`: the newest assignment, the last of its sorted list
        (filtering the newest-first order keeps assignments newest first)."""
        if self._authoring is None:
            if self.assignments:
                self._authoring = self.assignments[-1]
            else:
                self._authoring = next(e for e in self.events() if e.kind.addition)
        return self._authoring


class Version:
    """A version of an artifact: registered (`A@vX`) or named by its commit SHA.

    Derived views are computed on first use and dropped by the next event: the state is read
    far more often than it is built.
    """

    __slots__ = (
        "_active",
        "_active_stages",
        "_all",
        "_authoring",
        "_direct",
        "_indirect",
        "_memo",
        "_newest",
        "artifact",
        "commit",
        "commit_events",
        "deregistrations",
        "name",
        "registrations",
        "stages",
    )

    def __init__(self, artifact: str, name: str, commit: str) -> None:
        self.artifact = artifact
        self.name = name
        self.commit = commit
        self.commit_events: list[Event] = []
        self.registrations: list[Event] = []
        self.deregistrations: list[Event] = []
        self.stages: dict[str, VStage] = {}
        self._forget()

    def _forget(self) -> None:
        self._memo = False  # set by every memo below: `add` then knows there is none to drop
        self._direct: list[Event] | None = None
        self._indirect: list[Event] | None = None
        self._all: list[Event] | None = None
        self._active: bool | None = None
        self._authoring: Event | None = None
        self._active_stages: list[VStage] | None = None
        self._newest: int | None = None

    def add(self, event: Event) -> None:
        if self._memo:
            self._forget()
        kind = event.kind
        if kind is EventKind.ASSIGNMENT or kind is EventKind.UNASSIGNMENT:
            stage = str(event.stage)
            vstage = self.stages.get(stage)
            if vstage is None:
                vstage = self.stages[stage] = VStage(self.artifact, self.name, self.commit, stage)
            vstage.add(event)
        elif kind is EventKind.REGISTRATION:
            _insert_sorted(self.registrations, event)
        elif kind is EventKind.DEREGISTRATION:
            _insert_sorted(self.deregistrations, event)
        elif kind is EventKind.COMMIT:
            if event not in self.commit_events:
                _insert_sorted(self.commit_events, event)
        else:
            raise ValueError(f"a version holds no {kind.label} events")

    @property
    def peeled_commit(self) -> str:
        """The commit behind the version: a tag-of-tag target is peeled by the enrichment step."""
        return self.commit_events[0].commit if self.commit_events else self.commit

    def direct_events(self) -> list[Event]:
        if self._direct is None:
            self._memo = True
            self._direct = newest_first(self.registrations + self.deregistrations)
        return self._direct

    def _stage_events(self) -> list[Event]:
        return [e for s in self.stages.values() for e in s.events()]

    def indirect_events(self) -> list[Event]:
        if self._indirect is None:
            self._memo = True
            self._indirect = newest_first(self.commit_events + self._stage_events())
        return self._indirect

    def events(self) -> list[Event]:
        if self._all is None:
            self._memo = True
            self._all = newest_first(
                self.registrations
                + self.deregistrations
                + self.commit_events
                + self._stage_events()
            )
        return self._all

    def newest_seconds(self) -> int | None:
        """The time of `events()[0]`, without sorting every event; None without events."""
        if self._newest is None:
            self._memo = True
            lists = [self.registrations, self.deregistrations, self.commit_events]
            for stage in self.stages.values():
                lists += (stage.assignments, stage.unassignments)
            self._newest = max((e[-1].time.seconds for e in lists if e), default=None)
        return self._newest

    @property
    def discovered(self) -> bool:
        """No registration and no deregistration: known only from stage tags or artifacts.yaml."""
        return not self.registrations and not self.deregistrations

    @property
    def is_registered(self) -> bool:
        return bool(self.registrations)

    @property
    def is_active(self) -> bool:
        if self._active is None:
            self._memo = True
            # `direct_events()[0]` without sorting: a deregistration wins a same-second tie.
            registered, deregistered = self.registrations, self.deregistrations
            if deregistered:
                self._active = (
                    bool(registered) and registered[-1].time.seconds > deregistered[-1].time.seconds
                )
            elif registered:
                self._active = True
            else:
                self._active = bool(self.commit_events or self.stages)
        return self._active

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
        if self._authoring is None:
            self._memo = True
            # The first addition of `direct_events()` is the newest registration: the last one.
            registrations = self.registrations
            self._authoring = registrations[-1] if registrations else self.indirect_events()[0]
        return self._authoring

    def active_stages(self) -> list[VStage]:
        """Active stages, oldest activation first (GTO `get_vstages(ascending=True)`)."""
        if self._active_stages is None:
            active = [s for s in self.stages.values() if s.is_active]
            self._memo = True
            self._active_stages = sorted(active, key=_activated)
        return self._active_stages


_activated = attrgetter("activated_seconds")


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
        newest_deprecation = _newest_seconds(self.deprecations)
        # Any version event at or after it will do: most artifacts answer at their first version.
        for version in self.versions:
            seconds = version.newest_seconds()
            if seconds is not None and (
                newest_deprecation is None or seconds >= newest_deprecation
            ):
                return True
        return False

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
        found = self._explicit_by_commit.get(commit)
        if found:
            if name is not None:
                found = [v for v in found if v.name == name]
            if len(found) > 1:
                raise _many_versions(self.name, commit, found)
            if found:
                return found[0]
        version = Version(self.name, name or commit, commit)
        self.versions.append(version)
        return version

    def stage_holder(self, commit: str) -> Version:
        """The version a stage tag on `commit` lands on: GTO looks it up by commit, then by that
        commit and the name found (so an unregistered commit gets two SHA-named versions)."""
        found = self._explicit_by_commit.get(commit)
        if found is not None and len(found) == 1:
            return found[0]  # what both lookups return
        name = self.find_or_create(commit).name
        return self.find_or_create(commit, name)

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
        found = self.artifacts.get(name)
        if found is None:
            found = self.artifacts[name] = Artifact(name)
        return found

    def events(self) -> Iterator[Event]:
        for artifact in self.artifacts.values():
            yield from artifact.events()


def build_state(
    tags: Iterable[tuple[ParsedTag, TagRecord]],
    source: CommitSource,
    reserved: Iterable[str] = (),
    head_artifacts: AbstractSet[str] | None = None,
) -> RegistryState:
    """Fold annotated GTO tags into state, then enrich with commits and artifacts.yaml.

    `reserved` names lightweight `@created` tags: GTO fails on those too, annotated or not.
    `head_artifacts` limits which of HEAD's artifacts.yaml entries are added (None: all), so a
    subset of the artifacts can be folded alone (partition.py).
    GTO folds deprecations, then versions, then stages, each in (tagger second, name) order.
    """
    ordered = sorted(tags, key=_fold_order)
    if ordered:  # sorted by time: the first and the last bound every tagger date
        _check_date(ordered[0][1].time, f"tag {ordered[0][1].name}")
        _check_date(ordered[-1][1].time, f"tag {ordered[-1][1].name}")
    deprecations, versions, stages = [], [], []
    created = set(reserved)
    for pair in ordered:
        action = pair[0].action
        if action is Action.ASSIGN or action is Action.UNASSIGN:
            stages.append(pair)
        elif action is Action.REGISTER or action is Action.DEREGISTER:
            versions.append(pair)
        elif action is Action.DEPRECATE:
            deprecations.append(pair)
        else:
            created.add(pair[0].name)
    if created:
        raise created_tags_error(sorted(created))
    state = RegistryState()
    _fold_deprecations(state, deprecations)
    _fold_versions(state, versions)
    _fold_stages(state, stages)
    _enrich_versions(state, source)
    _discover_at_head(state, source, head_artifacts)
    return state


def _fold_order(pair: tuple[ParsedTag, TagRecord]) -> tuple[int, str]:
    return pair[1].time.seconds, pair[0].name


def _check_date(time: Instant, what: str) -> None:
    """Dates a datetime can hold (years 1 to 9999 in any time zone); git stores any integer."""
    if time.problem is not None:
        raise RegistryError(
            f"{what} has a date out of range ({time.seconds} seconds, offset {time.offset}):"
            " dates must fall in the years 1 to 9999"
        )


def created_tags_error(names: list[str]) -> CreatedTagsError:
    return CreatedTagsError(
        f"reserved '@created' tags {', '.join(sorted(names))} make GTO fail on every command; "
        "delete them"
    )


def _fold_deprecations(state: RegistryState, tags: list[tuple[ParsedTag, TagRecord]]) -> None:
    for parsed, tag in tags:
        event = tag_event(EventKind.DEPRECATION, tag, parsed.artifact, None, None)
        _insert_sorted(state.artifact(parsed.artifact).deprecations, event)


def _fold_versions(state: RegistryState, tags: list[tuple[ParsedTag, TagRecord]]) -> None:
    for parsed, tag in tags:
        kind = (
            EventKind.REGISTRATION if parsed.action is Action.REGISTER else EventKind.DEREGISTRATION
        )
        artifact = state.artifact(parsed.artifact)
        version = artifact.find_or_create(tag.target, parsed.version)
        artifact.add(tag_event(kind, tag, parsed.artifact, parsed.version, None), version)


def _fold_stages(state: RegistryState, tags: list[tuple[ParsedTag, TagRecord]]) -> None:
    for parsed, tag in tags:
        kind = EventKind.ASSIGNMENT if parsed.action is Action.ASSIGN else EventKind.UNASSIGNMENT
        artifact = state.artifact(parsed.artifact)
        try:
            holder = artifact.stage_holder(tag.target)
        except RegistryError as error:
            raise RegistryError(f"{error}; stage tag {tag.name} points there") from None
        # A stage event never makes a version explicit: no bookkeeping in Artifact.add needed.
        holder.add(tag_event(kind, tag, parsed.artifact, holder.name, parsed.stage))


def _enrich_versions(state: RegistryState, source: CommitSource) -> None:
    for artifact in state.artifacts.values():
        for version in artifact.versions:
            commit = source.commit(version.commit)
            _check_date(commit.time, f"commit {commit.sha[:7]}")
            annotation = _annotation(source, commit.sha, artifact.name)
            version.add(commit_event(artifact.name, version.name, commit, annotation))


def _discover_at_head(
    state: RegistryState, source: CommitSource, only: AbstractSet[str] | None
) -> None:
    head = source.head
    if head is None:
        return
    index = source.index(head)
    if not index:
        return
    commit = source.commit(head)
    _check_date(commit.time, f"commit {commit.sha[:7]}")
    for name, annotation in index.items():
        if only is not None and name not in only:
            continue
        artifact = state.artifact(name)
        version = artifact.find_or_create(head)
        version.add(commit_event(name, version.name, commit, annotation))


def _annotation(source: CommitSource, commit: str, artifact: str) -> ArtifactAnnotation | None:
    index = source.index(commit)
    return index.get(artifact) if index else None

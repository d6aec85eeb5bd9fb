"""What the registry is made of: git records read by an adapter, and GTO's events built from them.

Times are whole epoch seconds plus the UTC offset they were written with: GTO compares events as
absolute instants and prints them with their own offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

from gitstage.domain.registry.index import ArtifactAnnotation

DAY_SECONDS = 86_400
# A day inside datetime's years 1 to 9999, so that any offset under a day stays inside too.
EARLIEST_SECONDS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp())
LATEST_SECONDS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp())


@dataclass(slots=True)
class Instant:
    """A git timestamp: epoch seconds and the writer's UTC offset in seconds.

    Git stores any integer; only EARLIEST_SECONDS to LATEST_SECONDS, with an offset under a
    day, convert to a datetime (`problem` says why not; the state and `--date` refuse others)."""

    seconds: int
    offset: int

    @property
    def problem(self) -> str | None:
        """Why no datetime can hold this instant (GTO fails on such a date), or None."""
        if abs(self.offset) >= DAY_SECONDS:
            return "the UTC offset must be under 24 hours"
        if not EARLIEST_SECONDS <= self.seconds <= LATEST_SECONDS:
            return "dates must fall in the years 1 to 9999"
        return None

    def to_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, tz=timezone(timedelta(seconds=self.offset)))

    def isoformat(self) -> str:
        return self.to_datetime().isoformat()


@dataclass(slots=True)
class TagRecord:
    """An annotated tag object as read from git: `target` is the immediate object, not peeled."""

    name: str
    target: str
    tagger_name: str
    tagger_email: str
    time: Instant
    message: str


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """The commit a version points at (peeled), as the enrichment step needs it."""

    sha: str
    time: Instant
    message: str
    author_name: str
    author_email: str
    committer_name: str
    committer_email: str


_ADDITIONS = ("commit", "creation", "registration", "assignment")


class EventKind(Enum):
    """GTO's event classes with their priorities (used to order `history`).

    `label`, `priority` and `addition` are plain attributes, set once per member: the fold and
    the views read them for every event.
    """

    COMMIT = ("commit", 0)
    CREATION = ("creation", 1)
    DEPRECATION = ("deprecation", 2)
    REGISTRATION = ("registration", 3)
    DEREGISTRATION = ("deregistration", 4)
    ASSIGNMENT = ("assignment", 5)
    UNASSIGNMENT = ("unassignment", 6)

    def __init__(self, label: str, priority: int) -> None:
        self.label = label
        self.priority = priority
        self.addition = label in _ADDITIONS


@dataclass(slots=True)
class Event:
    """One GTO event. `tag` is None only for commit (enrichment) events.

    Never mutated once built; not frozen only because frozen dataclasses are slow to build.
    """

    kind: EventKind
    artifact: str
    time: Instant
    author: str
    author_email: str
    message: str
    commit: str
    tag: str | None = None
    version: str | None = None
    stage: str | None = None
    annotation: ArtifactAnnotation | None = None
    committer: str = ""
    committer_email: str = ""

    @property
    def seconds(self) -> int:
        return self.time.seconds

    @property
    def ref(self) -> str:
        """GTO's `ref`: the tag name, or the commit for commit events."""
        return self.tag if self.tag is not None else self.commit


def tag_event(
    kind: EventKind, tag: TagRecord, artifact: str, version: str | None, stage: str | None
) -> Event:
    return Event(  # positional: built once per tag
        kind,
        artifact,
        tag.time,
        tag.tagger_name,
        tag.tagger_email,
        tag.message.strip(),
        tag.target,
        tag.name,
        version,
        stage,
    )


def commit_event(
    artifact: str, version: str, commit: CommitRecord, annotation: ArtifactAnnotation | None
) -> Event:
    return Event(  # positional: built once per version
        EventKind.COMMIT,
        artifact,
        commit.time,
        commit.author_name,
        commit.author_email,
        commit.message,
        commit.sha,
        None,
        version,
        None,
        annotation,
        commit.committer_name,
        commit.committer_email,
    )

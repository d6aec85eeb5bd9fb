"""What each dashboard page shows, built from a `Snapshot`: pure, no I/O, no HTML.

Registries that follow the same repository and branch (several ModelRegistries, several
namespaces) show as one repository: one row per artifact, with the badges of every Deployment
that serves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from gitstage.dashboard.forges import commit_url
from gitstage.dashboard.inputs import (
    PostedEvent,
    RegistrySnapshot,
    SignatureCheck,
    Snapshot,
    bounded,
    clean_text,
)
from gitstage.domain.policy.rules import SignatureKind
from gitstage.domain.policy.tag_signature import message_without_signature, signature_offset
from gitstage.domain.registry.events import Event, Instant
from gitstage.domain.registry.index import ArtifactAnnotation
from gitstage.domain.registry.state import Artifact, RegistryState, Version
from gitstage.domain.registry.views import (
    get_versions,
    history_events,
    latest_version,
    stage_view,
)
from gitstage.domain.repo_urls import repository_key
from gitstage.resources import v1alpha1 as v1

RECENT_EVENTS = 20
PAGE_ROWS = 200  # rows of the models page: a browser lays out 200 rows in well under a second


# -- shared pieces ------------------------------------------------------------------------------


class BadgeKind(Enum):
    SERVING = "serving"
    ROLLING_OUT = "rolling out"
    HELD = "held"
    FAILING = "failing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Badge:
    """One Deployment serving an artifact: what it runs and how its rollout goes."""

    registry: str
    deployment: str
    stage: str | None
    kind: BadgeKind
    version: str | None
    reason: str


def badge_of(registry: str, state: v1.DeploymentState) -> Badge:
    """Serving (Complete), rolling out (Progressing, Pending), held (Held, or serving a fallback
    with a policy message), failing (Failed) with the reason, as the Ready condition words it."""
    kind = {
        "Complete": BadgeKind.SERVING,
        "Progressing": BadgeKind.ROLLING_OUT,
        "Pending": BadgeKind.ROLLING_OUT,
        "Held": BadgeKind.HELD,
        "Failed": BadgeKind.FAILING,
    }.get(state.rollout, BadgeKind.UNKNOWN)
    reason = clean_text(state.message)
    if kind is BadgeKind.SERVING and reason:
        kind = BadgeKind.HELD  # a refused promotion: the newest compliant version serves
    if kind is BadgeKind.FAILING and not reason:
        reason = "rollout exceeded its progress deadline"
    version = state.observed_version or state.desired_version
    return Badge(registry, state.name, state.stage, kind, version, reason)


@dataclass(frozen=True)
class Repository:
    """A repository as the pages name it: its key (URLs) and its redacted URL and branch."""

    key: str
    url: str
    branch: str | None

    @property
    def label(self) -> str:
        return f"{self.url} ({self.branch})" if self.branch else self.url


@dataclass(frozen=True)
class Group:
    """The registries following one repository and branch; the first one's state is shown."""

    repository: Repository
    registries: tuple[RegistrySnapshot, ...]

    @property
    def state(self) -> RegistryState | None:
        return next((r.state for r in self.registries if r.state is not None), None)

    @property
    def signatures(self) -> SignatureCheck | None:
        return next((r.signatures for r in self.registries if r.signatures is not None), None)

    def badges(self, artifact: str) -> tuple[Badge, ...]:
        return tuple(
            badge_of(r.key, d)
            for r in self.registries
            for d in r.deployments
            if d.artifact == artifact
        )


def group_registries(registries: Iterable[RegistrySnapshot]) -> list[Group]:
    """By repository key and branch, in key order."""
    groups: dict[tuple[str, str | None], list[RegistrySnapshot]] = {}
    for registry in sorted(registries, key=lambda r: r.key):
        groups.setdefault((repository_key(registry.url), registry.branch), []).append(registry)
    return [
        Group(Repository(key, members[0].url, branch), tuple(members))
        for (key, branch), members in sorted(groups.items(), key=lambda item: item[0][0])
    ]


def in_namespaces(snapshot: Snapshot, namespaces: frozenset[str]) -> Snapshot:
    """Only the registries of these namespaces (all of them when empty)."""
    if not namespaces:
        return snapshot
    kept = tuple(r for r in snapshot.registries if r.namespace in namespaces)
    return Snapshot(kept, snapshot.cluster, snapshot.standby)


def moment(instant: Instant) -> datetime:
    return instant.to_datetime().astimezone(UTC)


# -- the models page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCell:
    stage: str
    version: str


@dataclass(frozen=True)
class ModelRow:
    repository: Repository
    artifact: str
    latest: str | None
    deprecated: bool
    stages: tuple[StageCell, ...]
    badges: tuple[Badge, ...]


@dataclass(frozen=True)
class Problem:
    """A registry whose source cannot be read right now (its last good state still shows)."""

    registry: str
    message: str


@dataclass(frozen=True)
class ModelsPage:
    rows: tuple[ModelRow, ...]  # this page's rows
    cluster: bool
    repositories: int
    registries: int
    problems: tuple[Problem, ...]
    query: str = ""
    total: int = 0  # rows matching the query, on every page
    first: int = 0  # the position of rows[0] among them, from 0
    page: int = 1
    pages: int = 1


def models_page(
    snapshot: Snapshot, query: str = "", page: int = 1, page_rows: int = PAGE_ROWS
) -> ModelsPage:
    """One row per artifact of every repository, by artifact name, `page_rows` a page; `query`
    keeps the artifacts whose name, repository or registries (namespace/name) contain it.

    Only the page's rows are resolved (latest version, stage holders, badges): a page costs
    the same with 40 artifacts or 4,000."""
    groups = group_registries(snapshot.registries)
    needle = query.strip().lower()
    matching = [
        (name, group)
        for group in groups
        if group.state is not None
        for name in group.state.artifacts
        if not needle or needle in _haystack(name, group)
    ]
    matching.sort(key=lambda pair: (pair[0], pair[1].repository.key))
    pages = max(1, -(-len(matching) // page_rows))
    page = min(max(page, 1), pages)
    first = (page - 1) * page_rows
    rows = tuple(_row(group, name) for name, group in matching[first : first + page_rows])
    problems = tuple(
        Problem(r.key, clean_text(r.source_error)) for r in snapshot.registries if r.source_error
    )
    return ModelsPage(
        rows,
        snapshot.cluster,
        len(groups),
        len(snapshot.registries),
        problems,
        query,
        len(matching),
        first,
        page,
        pages,
    )


def _haystack(artifact: str, group: Group) -> str:
    registries = " ".join(r.key for r in group.registries)
    return f"{artifact} {group.repository.url} {registries}".lower()


def _row(group: Group, name: str) -> ModelRow:
    assert group.state is not None  # only groups with a state have rows
    artifact = group.state.artifacts[name]
    latest = latest_version(artifact)
    return ModelRow(
        group.repository,
        artifact.name,
        latest.name if latest else None,
        not artifact.is_active,
        tuple(StageCell(s, v) for s, v in stage_holders(artifact)),
        group.badges(artifact.name),
    )


def stage_holders(artifact: Artifact) -> list[tuple[str, str]]:
    """(stage, version) as `gitstage show` resolves them (latest assignment wins)."""
    view = stage_view(artifact)
    return [(stage, holders[0].version) for stage, holders in sorted(view.items()) if holders]


# -- a model's page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Description:
    """The artifact's artifacts.yaml entry (at the newest commit that has one)."""

    type: str | None
    path: str | None
    description: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Commit:
    sha: str
    url: str | None  # on the forge, when the repository is on a known one


@dataclass(frozen=True)
class VersionRow:
    name: str
    commit: Commit
    status: str  # registered, deregistered, unregistered (named by its commit)
    registered_at: datetime | None
    registered_by: str
    stages: tuple[str, ...]  # stages it holds now


class SignatureState(Enum):
    UNSIGNED = "unsigned"
    SIGNED = "signed, not verified"
    VERIFIED = "verified"
    INVALID = "does not verify"


@dataclass(frozen=True)
class Signature:
    state: SignatureState
    detail: str = ""  # who signed (verified), or why it does not verify

    @property
    def text(self) -> str:
        return f"{self.state.value}: {self.detail}" if self.detail else self.state.value


@dataclass(frozen=True)
class AuditRow:
    """One tag event, in `gitstage history` order: who did what, when, and with which message."""

    at: datetime
    event: str  # registration, assignment, unassignment, deregistration, deprecation
    version: str | None
    stage: str | None
    author: str
    author_email: str
    message: str
    signature: Signature
    tag: str
    commit: Commit


@dataclass(frozen=True)
class ModelPage:
    repository: Repository
    artifact: str
    deprecated: bool
    latest: str | None
    description: Description | None
    stages: tuple[StageCell, ...]
    versions: tuple[VersionRow, ...]
    timeline: tuple[AuditRow, ...]
    badges: tuple[Badge, ...]
    cluster: bool
    older_events: int = 0  # left out of the timeline (beyond TIMELINE_ROWS)


def model_page(snapshot: Snapshot, repository: str, artifact: str) -> ModelPage | None:
    """The artifact `artifact` of the repository whose key is `repository`; None if unknown."""
    for group in group_registries(snapshot.registries):
        state = group.state
        if group.repository.key != repository or state is None:
            continue
        found = state.artifacts.get(artifact)
        if found is not None:
            return _model_page(group, found, snapshot.cluster)
    return None


# The newest events a model page lists: the page stays a page (and cached) whatever the
# history; `gitstage history NAME` lists them all.
TIMELINE_ROWS = 500


def _model_page(group: Group, artifact: Artifact, cluster: bool) -> ModelPage:
    latest = latest_version(artifact)
    url = group.repository.url
    holders = stage_holders(artifact)
    history = _history(group, artifact)
    return ModelPage(
        repository=group.repository,
        artifact=artifact.name,
        deprecated=not artifact.is_active,
        latest=latest.name if latest else None,
        description=describe(artifact),
        stages=tuple(StageCell(s, v) for s, v in holders),
        versions=tuple(_version_row(v, url, holders) for v in _listed_versions(artifact)),
        timeline=tuple(audit_row(e, url, group.signatures) for e in history[:TIMELINE_ROWS]),
        badges=group.badges(artifact.name),
        cluster=cluster,
        older_events=max(0, len(history) - TIMELINE_ROWS),
    )


def _history(group: Group, artifact: Artifact) -> list[Event]:
    """`gitstage history NAME`'s events, in its order (newest first)."""
    state = group.state
    return history_events(state, artifact.name, ascending=False) if state else []


def _listed_versions(artifact: Artifact) -> list[Version]:
    """Every version with a tag (deregistered ones too), highest first, as `show -d` lists."""
    versions = get_versions(artifact, active_only=False)
    return [v for v in versions if v.registrations or v.deregistrations or v.stages]


def _version_row(version: Version, url: str, holders: list[tuple[str, str]]) -> VersionRow:
    registration = version.registrations[-1] if version.registrations else None
    if version.deregistrations and not version.is_active:
        status = "deregistered"
    elif version.is_registered:
        status = "registered"
    else:
        status = "unregistered"
    return VersionRow(
        name=version.name,
        commit=commit_of(url, version.peeled_commit),
        status=status,
        registered_at=moment(registration.time) if registration else None,
        registered_by=registration.author if registration else "",
        stages=tuple(stage for stage, holder in holders if holder == version.name),
    )


def commit_of(url: str, sha: str) -> Commit:
    return Commit(sha, commit_url(url, sha))


def describe(artifact: Artifact) -> Description | None:
    """artifacts.yaml's entry at the newest commit that has one."""
    annotated = [e for v in artifact.versions for e in v.commit_events if e.annotation is not None]
    if not annotated:
        return None
    newest = max(annotated, key=lambda e: e.time.seconds)
    entry: ArtifactAnnotation | None = newest.annotation
    assert entry is not None  # filtered above
    return Description(entry.type, entry.path, entry.description, tuple(entry.labels))


def audit_row(event: Event, url: str, check: SignatureCheck | None) -> AuditRow:
    return AuditRow(
        at=moment(event.time),
        event=event.kind.label,
        version=event.version,
        stage=event.stage,
        author=event.author,
        author_email=event.author_email,
        message=bounded(message_without_signature(event.message).strip()),
        signature=signature_of(event, check),
        tag=event.ref,
        commit=commit_of(url, event.commit),
    )


def signature_of(event: Event, check: SignatureCheck | None) -> Signature:
    """Unsigned, or signed: verified (by whom), not verifying (why), or not verified here."""
    if event.tag is None or signature_offset(event.message.encode("utf-8")) is None:
        return Signature(SignatureState.UNSIGNED)
    status = check(event.tag) if check is not None else None
    if status is None:
        return Signature(SignatureState.SIGNED)
    if status.kind is SignatureKind.VALID:
        return Signature(SignatureState.VERIFIED, ", ".join(status.signers))
    if status.kind is SignatureKind.INVALID:
        return Signature(SignatureState.INVALID, status.detail)
    return Signature(SignatureState.UNSIGNED)


# -- the rollouts page --------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchError:
    at: datetime
    message: str
    current: bool  # the Deployment is failing because of it right now


@dataclass(frozen=True)
class DeploymentRow:
    name: str
    artifact: str
    stage: str | None
    desired: str | None
    desired_commit: Commit | None
    observed: str | None
    observed_commit: Commit | None
    replicas: str  # ready/wanted
    badge: Badge
    fetch_error: FetchError | None


@dataclass(frozen=True)
class RegistryRollouts:
    key: str
    namespace: str | None
    repository: Repository
    head: Commit | None
    changed_at: datetime | None
    source_error: str
    deployments: tuple[DeploymentRow, ...]
    events: tuple[PostedEvent, ...]  # newest first


@dataclass(frozen=True)
class RolloutsPage:
    registries: tuple[RegistryRollouts, ...]
    cluster: bool


def rollouts_page(snapshot: Snapshot) -> RolloutsPage:
    registries = sorted(snapshot.registries, key=lambda r: r.key)
    return RolloutsPage(tuple(_rollouts(r) for r in registries), snapshot.cluster)


def _rollouts(registry: RegistrySnapshot) -> RegistryRollouts:
    url = registry.url
    events = sorted(registry.events, key=lambda e: e.at, reverse=True)
    return RegistryRollouts(
        key=registry.key,
        namespace=registry.namespace,
        repository=Repository(repository_key(url), url, registry.branch),
        head=commit_of(url, registry.head) if registry.head else None,
        changed_at=_instant(registry.changed_at),
        source_error=clean_text(registry.source_error),
        deployments=tuple(_deployment_row(registry, d, events) for d in registry.deployments),
        events=tuple(_clean_event(e) for e in events[:RECENT_EVENTS]),
    )


def _instant(text: str | None) -> datetime | None:
    """An ISO time from the operator's source view, in UTC (None when absent or unreadable)."""
    try:
        return datetime.fromisoformat(text).astimezone(UTC) if text else None
    except ValueError:
        return None


def _clean_event(event: PostedEvent) -> PostedEvent:
    return PostedEvent(event.at, event.type, event.reason, clean_text(event.message))


def _deployment_row(
    registry: RegistrySnapshot, state: v1.DeploymentState, events: list[PostedEvent]
) -> DeploymentRow:
    url = registry.url
    wanted = 1 if state.replicas is None else state.replicas
    badge = badge_of(registry.key, state)
    return DeploymentRow(
        name=state.name,
        artifact=state.artifact,
        stage=state.stage,
        desired=state.desired_version,
        desired_commit=commit_of(url, state.desired_commit) if state.desired_commit else None,
        observed=state.observed_version,
        observed_commit=commit_of(url, state.observed_commit) if state.observed_commit else None,
        replicas=f"{state.ready_replicas}/{wanted}",
        badge=badge,
        fetch_error=last_fetch_error(state.name, events, badge.kind is BadgeKind.FAILING),
    )


def last_fetch_error(
    deployment: str, events: list[PostedEvent], failing: bool
) -> FetchError | None:
    """The newest FetchFailed event of this Deployment (events newest first)."""
    prefix = f"{deployment}: "
    for event in events:
        if event.reason == "FetchFailed" and event.message.startswith(prefix):
            return FetchError(event.at, clean_text(event.message.removeprefix(prefix)), failing)
    return None

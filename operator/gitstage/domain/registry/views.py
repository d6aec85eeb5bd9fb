"""Resolution views over the registry state, as gto/base.py and gto/api.py compute them.

The central one is the stage view (`get_vstages`): which versions hold each stage, given how many
versions per stage (`vs`) and assignments per version (`av`) to keep, and whether candidates are
ordered by assignment time (the CLI default) or by semver (`find_versions_in_stage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gitstage.domain.registry.events import Event, EventKind
from gitstage.domain.registry.semver import is_valid_version, precedence_of
from gitstage.domain.registry.state import Artifact, RegistryState, Version, VStage


class Sort(Enum):
    TIMESTAMP = "timestamp"
    SEMVER = "semver"


class ArtifactNotFoundError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot find artifact '{name}'")


class ViewArgumentError(ValueError):
    """Arguments GTO rejects (`WrongArgs`)."""


@dataclass(frozen=True)
class ViewOptions:
    """`gto show` flags: --ro, -d, --av, --vs, --sort."""

    registered_only: bool = False
    deprecated: bool = False
    assignments_per_version: int = -1
    versions_per_stage: int = 1
    sort: Sort = Sort.TIMESTAMP

    @classmethod
    def from_flags(
        cls, registered_only: bool, deprecated: bool, av: int, vs: int, sort: str
    ) -> ViewOptions:
        """From `gto show`'s flags (`--sort` as its string value)."""
        return cls(registered_only, deprecated, av, vs, Sort(sort))

    def __post_init__(self) -> None:
        if self.assignments_per_version < -1:
            raise ViewArgumentError("'assignments_per_version' must be >= -1")
        if self.versions_per_stage < -1:
            raise ViewArgumentError("'versions_per_stage' must be >=-1")


def sort_versions(versions: list[Version], sort: Sort = Sort.SEMVER) -> list[Version]:
    """Semver: valid versions by precedence, then SHA names; both descending. Or newest first."""
    if sort is Sort.TIMESTAMP:
        return sorted(versions, key=lambda v: v.authoring_event.time.seconds)[::-1]
    valid = [v for v in versions if is_valid_version(v.name)]
    others = [v for v in versions if not is_valid_version(v.name)]
    by_precedence = sorted(valid, key=lambda v: precedence_of(v.name))[::-1]
    return by_precedence + sorted(others, key=lambda v: v.name)[::-1]


def get_versions(
    artifact: Artifact,
    *,
    active_only: bool = True,
    include_non_explicit: bool = False,
    include_discovered: bool = False,
    sort: Sort | None = Sort.SEMVER,
) -> list[Version]:
    """GTO's `Artifact.get_versions`; `sort=None` keeps the state's order (for set-like uses)."""

    def keep(v: Version) -> bool:
        if not active_only:
            return True
        return v.is_active and (
            (v.is_registered and not v.discovered)
            or (include_discovered and v.discovered)
            or (include_non_explicit and not v.is_registered)
        )

    kept = [v for v in artifact.versions if keep(v)]
    return kept if sort is None else sort_versions(kept, sort)


def latest_version(artifact: Artifact, *, registered_only: bool = True) -> Version | None:
    """Highest active version by semver (prereleases included); registered ones only by default."""
    versions = get_versions(artifact, include_non_explicit=not registered_only)
    return versions[0] if versions else None


def stage_view(
    artifact: Artifact,
    *,
    registered_only: bool = False,
    assignments_per_version: int = -1,
    versions_per_stage: int = 1,
    sort: Sort = Sort.SEMVER,
) -> dict[str, list[VStage]]:
    """GTO's `Artifact.get_vstages`: the versions holding each stage, best first."""
    versions = get_versions(artifact, include_non_explicit=not registered_only, sort=sort)
    candidates: list[VStage] = []
    for version in versions:
        active = version.active_stages()
        # NB: GTO keeps each version's *oldest* N active stages.
        candidates += active[:assignments_per_version] if assignments_per_version > -1 else active
    if sort is Sort.TIMESTAMP:
        candidates = sorted(candidates, key=lambda s: s.authoring_event.time.seconds)[::-1]
    view: dict[str, list[VStage]] = {}
    for candidate in candidates:
        holders = view.setdefault(candidate.stage, [])
        if -1 < versions_per_stage <= len(holders):
            continue
        if candidate.version not in (h.version for h in holders):
            holders.append(candidate)
    return view


def options_stage_view(artifact: Artifact, options: ViewOptions) -> dict[str, list[VStage]]:
    return stage_view(
        artifact,
        registered_only=options.registered_only,
        assignments_per_version=options.assignments_per_version,
        versions_per_stage=options.versions_per_stage,
        sort=options.sort,
    )


def used_stages(state: RegistryState) -> list[str]:
    """Stages with an active assignment on an active version, deprecated artifacts included."""
    return sorted({s for artifact in state.artifacts.values() for s in artifact_stages(artifact)})


def artifact_stages(artifact: Artifact) -> set[str]:
    """The stages one artifact adds to `used_stages`."""
    # Every active stage of a candidate version gets a key in `stage_view`: no need to rank.
    return {
        s.stage
        for version in get_versions(artifact, include_non_explicit=True, sort=None)
        for s in version.stages.values()
        if s.is_active
    }


def registry_stages(state: RegistryState, configured: list[str] | None) -> list[str]:
    """The registry table's stage columns: `.gto` stages when set, otherwise the used ones."""
    return list(configured) if configured is not None else used_stages(state)


def find_artifact(state: RegistryState, name: str) -> Artifact:
    try:
        return state.artifacts[name]
    except KeyError:
        raise ArtifactNotFoundError(name) from None


@dataclass(frozen=True)
class ListedVersion:
    """A row of `gto show NAME`: a version and the stages the view gives it."""

    version: Version
    stages: list[VStage]


def list_versions(artifact: Artifact, options: ViewOptions) -> list[ListedVersion]:
    """GTO's `_get_versions`: every version (discovered ones too), with its view stages."""
    if not (artifact.is_active or options.deprecated):
        return []
    view = options_stage_view(artifact, options)
    versions = get_versions(
        artifact,
        active_only=not options.deprecated,
        include_non_explicit=not options.registered_only,
        include_discovered=True,
    )
    return [
        ListedVersion(v, [s for holders in view.values() for s in holders if s.version == v.name])
        for v in versions
    ]


def select_versions(
    rows: list[ListedVersion],
    *,
    latest: bool = False,
    version: str | None = None,
    stage: str | None = None,
) -> list[ListedVersion]:
    """Apply a `NAME@latest`, `NAME@vX` or `NAME#STAGE` shortcut to the version list."""
    if latest:
        return rows[:1]
    if version:
        return [r for r in rows if r.version.name == version]
    if stage:
        return [r for r in rows for s in r.stages if s.stage == stage]
    return rows


def versions_in_stage(
    artifact: Artifact,
    stage: str,
    *,
    registered_only: bool = False,
    assignments_per_version: int = -1,
    versions_per_stage: int = 1,
) -> list[VStage] | None:
    """GTO's API `find_versions_in_stage`: always semver-ordered, None when nobody holds it."""
    view = stage_view(
        artifact,
        registered_only=registered_only,
        assignments_per_version=assignments_per_version,
        versions_per_stage=versions_per_stage,
        sort=Sort.SEMVER,
    )
    return view.get(stage)


def history_events(state: RegistryState, artifact: str | None, ascending: bool) -> list[Event]:
    """`gto history`'s rows: every tag event (of `artifact`, or all), by time then priority,
    newest first unless `ascending`."""
    events = [e for e in state.events() if e.kind is not EventKind.COMMIT]
    events.sort(key=lambda e: (e.time.seconds, e.kind.priority))
    if not ascending:
        events.reverse()
    return [e for e in events if artifact is None or e.artifact == artifact]

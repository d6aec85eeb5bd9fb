"""Which tags a write command creates or deletes, or why GTO refuses it (gto/registry.py 1.10.1).

Every check runs in GTO's order, so a request that breaks two rules gets GTO's message for the
first. Unlike GTO, nothing is written when a check fails: `assign` refuses before creating its
auto-registration tag (GTO creates that tag, then refuses "already in stage").

The `#N` counter is per artifact and shared by all actions: one more than the highest counter of
any tag name of that artifact, lightweight and `@created` tags included (gto/tag.py `name_tag`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gitstage.domain.registry.events import Event, EventKind
from gitstage.domain.registry.names import is_valid_fullname, is_valid_name
from gitstage.domain.registry.semver import is_valid_version, parse_version
from gitstage.domain.registry.state import Artifact, RegistryState, Version, newest_first
from gitstage.domain.registry.tags import Action, format_tag, parse_tag
from gitstage.domain.registry.views import latest_version
from gitstage.domain.write.errors import (
    WriteRefusal,
    artifact_not_found,
    invalid_name,
    invalid_version_name,
    many_versions,
    no_versions,
    ref_not_found,
    tag_exists,
    unknown_revision,
    unknown_stage,
    unparsable_version,
)
from gitstage.domain.write.requests import (
    AssignRequest,
    AtRef,
    Bump,
    DeprecateRequest,
    DeregisterRequest,
    ExistingVersion,
    RegisterRequest,
    Simple,
    UnassignRequest,
    VersionSelector,
    WriteRequest,
)

FIRST_VERSION = "v0.0.1"

Resolver = Callable[[str], str | None]
"""REF -> the commit SHA it names, or None when the repository has no such revision."""


@dataclass(frozen=True)
class WriteContext:
    """What planning reads: the state, every tag name (for `#N` and clashes), `.gto` stages."""

    state: RegistryState
    tag_names: frozenset[str]
    resolve: Resolver
    allowed_stages: list[str] | None = None


@dataclass(frozen=True)
class NewTag:
    """An annotated tag to create. `version` is the version it concerns, for messages."""

    name: str
    artifact: str
    target: str
    message: str
    action: Action
    version: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class WritePlan:
    created: tuple[NewTag, ...] = ()
    deleted: tuple[str, ...] = field(default_factory=tuple)


def next_counter(artifact: str, tag_names: Iterable[str]) -> int:
    """One more than the highest `#N` among `artifact`'s tag names, whatever their action."""
    highest = 0
    for name in tag_names:
        parsed = parse_tag(name)
        if parsed is not None and parsed.artifact == artifact and parsed.counter is not None:
            highest = max(highest, parsed.counter)
    return highest + 1


def plan(context: WriteContext, request: WriteRequest) -> WritePlan:
    if isinstance(request, RegisterRequest):
        return plan_register(context, request)
    if isinstance(request, AssignRequest):
        return plan_assign(context, request)
    if isinstance(request, UnassignRequest):
        return plan_unassign(context, request)
    if isinstance(request, DeregisterRequest):
        return plan_deregister(context, request)
    return plan_deprecate(context, request)


def plan_register(context: WriteContext, request: RegisterRequest) -> WritePlan:
    _check_fullname(request.artifact)
    if request.version is not None and request.bump is not None:
        raise WriteRefusal("Need to specify either version or single bump argument")
    commit = _resolve(context, request.ref)
    artifact = context.state.artifacts.get(request.artifact)
    tag = _registration(
        context,
        artifact,
        _Registration(
            request.artifact,
            commit,
            request.version,
            request.bump,
            force=request.force,
            counter=request.simple is Simple.FALSE,
            message=request.message,
        ),
        context.tag_names,
    )
    return WritePlan((tag,))


@dataclass(frozen=True)
class _Registration:
    artifact: str
    commit: str
    version: str | None
    bump: Bump | None
    force: bool
    counter: bool
    message: str | None


def _registration(
    context: WriteContext,
    artifact: Artifact | None,
    request: _Registration,
    tag_names: frozenset[str],
) -> NewTag:
    name = request.artifact
    found = _find_one(artifact, name, commit=request.commit)
    version = request.version
    if found is not None:
        if not request.force and found.is_registered and found.is_active:
            raise WriteRefusal(
                f"'{name}' is already registered in this commit with version '{found.name}'"
            )
        if not version:
            version = found.name
        elif found.name != version:
            raise WriteRefusal(f"For this REF you can only register {found.name}")
    if version:
        if not is_valid_version(version):
            raise unparsable_version(version)
        if _find_one(artifact, name, version=version) is not found:
            raise WriteRefusal(f"Version '{version}' already was registered.")
    else:
        version = _next_version(artifact, request.bump)
    tag = _tag_name(Action.REGISTER, name, request.counter, tag_names, version=version)
    _check_free(tag, tag_names)
    message = request.message or f"Registering artifact {name} version {version}"
    return NewTag(tag, name, request.commit, message, Action.REGISTER, version)


def _next_version(artifact: Artifact | None, bump: Bump | None) -> str:
    """Bump the highest active registered version (its prerelease is dropped), else v0.0.1."""
    last = latest_version(artifact) if artifact is not None else None
    if last is None:
        if bump is not None:
            raise WriteRefusal(
                "Can't apply bump, because this is the first version being registered"
            )
        return FIRST_VERSION
    return parse_version(last.name).bump((bump or Bump.PATCH).value).text


def plan_assign(context: WriteContext, request: AssignRequest) -> WritePlan:
    name, stage, target = request.artifact, request.stage, request.target
    _check_fullname(name)
    _check_stage(context, stage)
    if isinstance(target, ExistingVersion):
        _check_version_name(target.version)
    elif target.new_version is not None:
        _check_version_name(target.new_version)
        if target.skip_registration:
            raise WriteRefusal("You either need to supply version name or skip registration")
    artifact = context.state.artifacts.get(name)
    holder = (
        _existing_holder(artifact, name, target)
        if isinstance(target, ExistingVersion)
        else _holder_at_ref(context, artifact, name, target)
    )
    if not request.force and stage in holder.active_stages:
        raise WriteRefusal(
            f"Version '{holder.version}' is already in stage '{stage}'. "
            "Use the '--force' flag to create a new Git tag nevertheless."
        )
    names = context.tag_names | {t.name for t in holder.registration}
    tag = _tag_name(Action.ASSIGN, name, request.simple is not Simple.TRUE, names, stage=stage)
    _check_free(tag, names)
    message = request.message or (
        f"Assigning stage {stage} to artifact {name} version {holder.version}"
    )
    assignment = NewTag(tag, name, holder.commit, message, Action.ASSIGN, holder.version, stage)
    return WritePlan((*holder.registration, assignment))


@dataclass(frozen=True)
class _Holder:
    """The version an assignment goes to, and the registration `assign` makes for it if any."""

    version: str
    commit: str
    active_stages: frozenset[str]
    registration: tuple[NewTag, ...] = ()


def _existing_holder(artifact: Artifact | None, name: str, target: ExistingVersion) -> _Holder:
    found = _find_one(artifact, name, version=target.version)
    if found is None:
        raise WriteRefusal(f"Version '{target.version}' is not registered")
    return _Holder(found.name, found.commit, _active_stages(found))


def _holder_at_ref(
    context: WriteContext, artifact: Artifact | None, name: str, target: AtRef
) -> _Holder:
    commit = _resolve(context, target.ref)
    found = _find_one(artifact, name, commit=commit)
    if found is not None:
        if target.new_version is not None:
            raise WriteRefusal(
                f"Can't register '{target.new_version}', since '{found.name}' "
                "is registered already at this ref"
            )
        return _Holder(found.name, commit, _active_stages(found))
    if target.skip_registration:
        # A fresh SHA-named version: GTO looks up no stages for it, so never "already in stage".
        return _Holder(commit, commit, frozenset())
    registration = _registration(
        context,
        artifact,
        _Registration(
            name,
            commit,
            target.new_version,
            bump=None,
            force=False,
            counter=False,  # GTO's auto-registration is always the simple form
            message=None,
        ),
        context.tag_names,
    )
    # Once registered, the commit's earlier stage tags (from `--sr`) belong to the new version.
    stages = _stages_of_unregistered_commit(artifact, commit)
    return _Holder(str(registration.version), commit, stages, (registration,))


def plan_unassign(context: WriteContext, request: UnassignRequest) -> WritePlan:
    name, stage = request.artifact, request.stage
    _check_fullname(name)
    _check_stage(context, stage)
    commit = _check_selector(context, request.selector)
    artifact = context.state.artifacts.get(name)
    if artifact is None:
        raise artifact_not_found(name)
    found = _find_one(artifact, name, version=request.selector.version, commit=commit)
    if found is None:
        raise no_versions(name)
    if not request.force and stage not in found.stages:
        raise WriteRefusal(f"Stage '{stage}' is not assigned to a version '{found.name}'")
    if request.delete:
        events = [e for e in _ascending_version_events(found) if e.stage == stage]
        return WritePlan(deleted=_distinct_tags(events))
    counter = request.simple is not Simple.TRUE
    tag = _tag_name(Action.UNASSIGN, name, counter, context.tag_names, stage=stage)
    _check_free(tag, context.tag_names)
    message = request.message or (
        f"Unassigning stage '{stage}' to artifact '{name}' version '{found.name}'"
    )
    return WritePlan(
        (NewTag(tag, name, found.commit, message, Action.UNASSIGN, found.name, stage),)
    )


def plan_deregister(context: WriteContext, request: DeregisterRequest) -> WritePlan:
    name, selector = request.artifact, request.selector
    _check_fullname(name)
    commit = _check_selector(context, selector)
    artifact = context.state.artifacts.get(name)
    if not request.force:
        checked = _find_one(artifact, name, version=selector.version, commit=commit)
        if checked is None:
            raise no_versions(name)
        if not checked.is_registered:
            raise WriteRefusal(f"The version at ref '{checked.commit}' is not registered")
        if not checked.is_active:
            raise WriteRefusal(f"The version at ref '{checked.commit}' was deregistered already")
    found = _find_one(artifact, name, version=selector.version, commit=commit)
    version = selector.version or (found.name if found else None)
    if found is None or not (version and (commit or found.commit)):
        raise WriteRefusal("Can't deregister a version that have no git tags")
    if request.delete:
        return WritePlan(deleted=_distinct_tags(_ascending_version_events(found)))
    counter = request.simple is Simple.FALSE
    tag = _tag_name(Action.DEREGISTER, name, counter, context.tag_names, version=version)
    _check_free(tag, context.tag_names)
    message = request.message or f"Deregistering artifact {name} version {version}"
    return WritePlan((NewTag(tag, name, found.commit, message, Action.DEREGISTER, version),))


def plan_deprecate(context: WriteContext, request: DeprecateRequest) -> WritePlan:
    name = request.artifact
    _check_fullname(name)
    artifact = context.state.artifacts.get(name)
    if request.force:
        if request.simple is Simple.TRUE:
            raise WriteRefusal("Can't use 'force' with 'simple=True'")
        counter = True
    else:
        counter = request.simple is Simple.FALSE
        if artifact is None:
            raise artifact_not_found(name)
        if not artifact.is_active:
            raise WriteRefusal("Artifact was deprecated already")
    if request.delete:
        if artifact is None:
            raise artifact_not_found(name)
        return WritePlan(deleted=_distinct_tags(_ascending_artifact_events(artifact)))
    tag = _tag_name(Action.DEPRECATE, name, counter, context.tag_names)
    ref = request.ref
    if ref is None:
        events = artifact.events() if artifact is not None else []
        ref = events[0].commit if events else "HEAD"
    target = context.resolve(ref)
    if target is None:
        raise ref_not_found(ref)
    _check_free(tag, context.tag_names)
    message = request.message or f"Deprecating artifact '{name}'"
    return WritePlan((NewTag(tag, name, target, message, Action.DEPRECATE),))


def _check_fullname(name: str) -> None:
    if not is_valid_fullname(name):
        raise invalid_name(name)


def _check_stage(context: WriteContext, stage: str) -> None:
    if not is_valid_name(stage):
        raise invalid_name(stage)
    if context.allowed_stages is not None and stage not in context.allowed_stages:
        raise unknown_stage(context.allowed_stages)


def _check_version_name(version: str) -> None:
    if not is_valid_version(version):
        raise invalid_version_name(version)


def _check_selector(context: WriteContext, selector: VersionSelector) -> str | None:
    """GTO's `_check_args` for version-or-ref, then the ref resolved to a commit."""
    if selector.version:
        _check_version_name(selector.version)
    if (selector.version is None) == (selector.ref is None):
        raise WriteRefusal("One and only one of (version, rev) must be specified.")
    return _resolve(context, selector.ref) if selector.ref else None


def _resolve(context: WriteContext, ref: str) -> str:
    commit = context.resolve(ref)
    if commit is None:
        raise unknown_revision(ref)
    return commit


def _find_one(
    artifact: Artifact | None,
    name: str,
    *,
    version: str | None = None,
    commit: str | None = None,
) -> Version | None:
    """GTO's `find_version`: registered or deregistered versions only, at most one."""
    if artifact is None:
        return None
    found = [
        v
        for v in artifact.versions
        if not v.discovered
        and (not version or v.name == version)
        and (not commit or v.commit == commit)
    ]
    if len(found) > 1:
        raise many_versions(name, [v.name for v in found])
    return found[0] if found else None


def _active_stages(version: Version) -> frozenset[str]:
    return frozenset(stage for stage, vstage in version.stages.items() if vstage.is_active)


def _stages_of_unregistered_commit(artifact: Artifact | None, commit: str) -> frozenset[str]:
    """Stages active on a commit's SHA-named versions, merged as one registered version's."""
    if artifact is None:
        return frozenset()
    assignments: dict[str, list[Event]] = {}
    unassignments: dict[str, list[Event]] = {}
    for version in artifact.versions:
        if version.discovered and version.commit == commit:
            for stage, vstage in version.stages.items():
                assignments.setdefault(stage, []).extend(vstage.assignments)
                unassignments.setdefault(stage, []).extend(vstage.unassignments)
    return frozenset(
        stage
        for stage, added in assignments.items()
        if newest_first(added + unassignments.get(stage, []))[0].kind is EventKind.ASSIGNMENT
    )


def _seconds(event: Event) -> int:
    return event.time.seconds


def _ascending_version_events(version: Version) -> list[Event]:
    """GTO's `Version.get_events(ascending=True)`, whose stable sort decides the delete order."""
    stage_events = [e for s in version.stages.values() for e in s.events()]
    return sorted(
        version.registrations + version.deregistrations + version.commit_events + stage_events,
        key=_seconds,
    )


def _ascending_artifact_events(artifact: Artifact) -> list[Event]:
    version_events = [e for v in artifact.versions for e in v.events()]
    return sorted(artifact.deprecations + version_events, key=_seconds)


def _distinct_tags(events: Iterable[Event]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(e.tag for e in events if e.tag is not None))


def _tag_name(
    action: Action,
    artifact: str,
    counter: bool,
    tag_names: frozenset[str],
    *,
    version: str | None = None,
    stage: str | None = None,
) -> str:
    number = next_counter(artifact, tag_names) if counter else None
    return format_tag(action, artifact, version=version, stage=stage, counter=number)


def _check_free(tag: str, tag_names: frozenset[str]) -> None:
    if tag in tag_names:
        raise tag_exists(tag)

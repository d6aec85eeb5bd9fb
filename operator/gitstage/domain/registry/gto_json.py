"""The JSON documents `gto show --json` and `gto history --json` print, built from the state.

Field names and order follow GTO's pydantic models (model_dump order, then the computed fields
`dict_state` appends), so the output is the same document, key for key.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from gitstage.domain.registry.events import Event, EventKind
from gitstage.domain.registry.state import Artifact, RegistryState, Version, VStage
from gitstage.domain.registry.views import (
    ListedVersion,
    ViewOptions,
    history_events,
    latest_version,
    options_stage_view,
    registry_stages,
)

Json = Any


# One artifact's line of `gto show --json`: latest registered version, the stage view's holders
# (stage -> "v1, v2", stages without one left out), registered, active.
ArtifactRow = tuple[str | None, dict[str, str], bool, bool]


def registry_document(
    state: RegistryState, options: ViewOptions, configured_stages: list[str] | None
) -> dict[str, Json]:
    """`gto show --json`: per artifact, latest registered version and the stage holders."""
    rows = ((name, artifact_row(a, options)) for name, a in state.artifacts.items())
    return document_from_rows(rows, registry_stages(state, configured_stages))


def artifact_row(artifact: Artifact, options: ViewOptions) -> ArtifactRow | None:
    """The artifact's line; None when the view leaves a deprecated artifact out."""
    active = artifact.is_active  # computed from every version's events: once
    if not (active or options.deprecated):
        return None
    latest = latest_version(artifact)
    view = options_stage_view(artifact, options)
    holders = {s: ", ".join(h.version for h in found) for s, found in view.items() if found}
    return (latest.name if latest else None, holders, artifact.is_registered, active)


def document_from_rows(
    rows: Iterable[tuple[str, ArtifactRow | None]], stages: list[str]
) -> dict[str, Json]:
    """The document from each artifact's line, in the state's order, with these stage columns."""
    document: dict[str, Json] = {}
    for name, row in rows:
        if row is None:
            continue
        version, holders, registered, active = row
        document[name] = {
            "version": version,
            "stage": {s: holders.get(s) for s in stages},
            "registered": registered,
            "active": active,
        }
    return document


def versions_document(rows: list[ListedVersion]) -> list[Json]:
    """`gto show NAME --json`: each version's full state with the view's stages."""
    return [_version(row.version, row.stages) for row in rows]


def _version(version: Version, stages: list[VStage]) -> dict[str, Json]:
    authoring = version.authoring_event
    return {
        "artifact": version.artifact,
        "commit_hexsha": version.commit,
        "version": version.name,
        "enrichments": [_event(e) for e in version.commit_events],
        "registrations": [_event(e) for e in version.registrations],
        "deregistrations": [_event(e) for e in version.deregistrations],
        "stages": [_vstage(s) for s in stages],
        "is_active": version.is_active,
        "activated_at": version.activated_event.time.isoformat(),
        **_authored(authoring),
        "discovered": version.discovered,
    }


def _vstage(vstage: VStage) -> dict[str, Json]:
    newest = vstage.events()[0]
    active = newest.kind is EventKind.ASSIGNMENT
    return {
        "artifact": vstage.artifact,
        "commit_hexsha": vstage.commit,
        "version": vstage.version,
        "stage": vstage.stage,
        "assignments": [_event(e, labelled=True) for e in vstage.assignments],
        "unassignments": [_event(e, labelled=True) for e in vstage.unassignments],
        "is_active": active,
        "activated_at": newest.time.isoformat() if active else None,
        **_authored(vstage.authoring_event),
    }


def _authored(event: Event) -> dict[str, Json]:
    return {
        "created_at": event.time.isoformat(),
        "author": event.author,
        "author_email": event.author_email,
        "message": event.message,
        "ref": event.ref,
    }


def _event(event: Event, *, labelled: bool = False) -> dict[str, Json]:
    document: dict[str, Json] = {
        "priority": event.kind.priority,
        "addition": event.kind.addition,
        "artifact": event.artifact,
        "created_at": event.time.isoformat(),
        "author": event.author,
        "author_email": event.author_email,
        "message": event.message,
        "commit_hexsha": event.commit,
    }
    if event.kind is EventKind.COMMIT:
        document["version"] = event.version
        document["enrichments"] = _enrichments(event)
        document["committer"] = event.committer
        document["committer_email"] = event.committer_email
        return document
    document["tag"] = event.tag
    if event.kind in (EventKind.REGISTRATION, EventKind.DEREGISTRATION):
        document["version"] = event.version
    elif event.kind in (EventKind.ASSIGNMENT, EventKind.UNASSIGNMENT):
        document["version"] = event.version
        document["stage"] = event.stage
    if labelled:
        document["event"] = event.kind.label
    return document


def _enrichments(event: Event) -> list[Json]:
    if event.annotation is None:
        return []
    return [{"source": "gto", "artifact": plain(event.annotation.as_dict())}]


def plain(value: Json) -> Json:
    """GTO's `make_ready_to_serialize`: datetimes become ISO strings, tuples lists."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def history_document(state: RegistryState, artifact: str | None, ascending: bool) -> list[Json]:
    """`gto history --json`: every tag event, newest first unless `ascending`."""
    return [_history_row(e) for e in history_events(state, artifact, ascending)]


def _history_row(event: Event) -> dict[str, Json]:
    return {
        "timestamp": event.time.isoformat(),
        "artifact": event.artifact,
        "event": event.kind.label,
        "priority": event.kind.priority,
        "version": event.version,
        "stage": event.stage,
        "commit": event.commit,
        "author": event.author,
        "author_email": event.author_email,
        "message": event.message,
        "ref": event.ref,
    }


def check_ref_document(state: RegistryState, artifact: str, tag: str) -> list[dict[str, Json]]:
    """`gto check-ref --json`: the events whose ref is `tag`, without priority and addition."""
    if artifact not in state.artifacts:
        return []
    found = [e for e in state.artifacts[artifact].events() if e.ref == tag]
    documents = [_event(e, labelled=True) for e in found]
    for document in documents:
        del document["priority"], document["addition"]
    return documents

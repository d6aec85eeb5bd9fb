"""`gitstage show`, `history`, `check-ref` and `describe`: the read side of `gto`, GTO-exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from gitstage.adapters.git.reader import Registry, read_registry
from gitstage.adapters.git.refs import events_of_ref
from gitstage.adapters.mirror.locate import readable_path
from gitstage.api import describe as describe_artifact
from gitstage.cli.errors import CommandError, one_line_errors
from gitstage.cli.flags import examples, one_of
from gitstage.cli.oneline import UsageLine
from gitstage.cli.show_json import SORTS
from gitstage.cli.table import render_table
from gitstage.domain.registry.gto_json import (
    history_document,
    plain,
    registry_document,
)
from gitstage.domain.registry.names import is_hexsha
from gitstage.domain.registry.state import RegistryState
from gitstage.domain.registry.tags import parse_shortcut
from gitstage.domain.registry.views import ListedVersion, ViewOptions, registry_stages
from gitstage.reading import ShowRequest, show_json_text, show_versions

EMPTY = "Nothing found in the current workspace"
P = ParamSpec("P")
R = TypeVar("R")

repo_option = click.option(
    "-r",
    "--repo",
    default=".",
    show_default=True,
    help="Repository: a path (any directory inside it), a bare repository or a URL.",
)


def print_json(document: Any) -> None:
    """Byte-compatible with gto: `json.dumps(..., indent=4)`."""
    click.echo(json.dumps(document, indent=4))


def _select_options(command: Callable[P, R]) -> Callable[P, R]:
    """`--name/--version/--stage/--ref`: print one column; two of them are refused."""
    for flag, what in reversed(SELECTS):
        command = click.option(f"--{flag}", f"select_{flag}", is_flag=True, help=what)(command)
    return command


SELECTS = (
    ("name", "Print artifact names only."),
    ("version", "Print versions only."),
    ("stage", "Print stages only."),
    ("ref", "Print registration tags only."),
)


@click.command(
    "show",
    epilog=examples(
        "gitstage show                      # the registry: latest version, each stage's holder",
        "gitstage show churn                # versions of churn",
        "gitstage show 'churn#prod'         # who holds prod",
        "gitstage show churn@latest --ref   # the latest version's registration tag",
        "gitstage show --json -r https://git.example/registry.git",
    ),
)
@click.argument("name", required=False)
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as `gto show --json`.")
@click.option("--plain", is_flag=True, help="Print a table without borders.")
@_select_options
@click.option(
    "--ro",
    "--registered-only",
    "registered_only",
    is_flag=True,
    help="Ignore versions named by a commit SHA (not registered).",
)
@click.option("-d", "--deprecated", is_flag=True, help="Include deprecated artifacts and versions.")
@click.option(
    "--av",
    "--assignments-per-version",
    "assignments_per_version",
    type=int,
    default=-1,
    show_default=True,
    help="Keep each version's N oldest active stages (-1: all), as GTO does.",
)
@click.option(
    "--vs",
    "--versions-per-stage",
    "versions_per_stage",
    type=int,
    default=1,
    show_default=True,
    help="Versions to show per stage (-1: all).",
)
@click.option(
    "--sort",
    type=click.Choice(list(SORTS)),
    default="timestamp",
    show_default=True,
    help="Order stage candidates by assignment time or semver.",
)
@one_line_errors
def show_command(
    name: str | None,
    repo: str,
    as_json: bool,
    plain: bool,
    select_name: bool,
    select_version: bool,
    select_stage: bool,
    select_ref: bool,
    registered_only: bool,
    deprecated: bool,
    assignments_per_version: int,
    versions_per_stage: int,
    sort: str,
) -> None:
    """Show the registry, an artifact's versions, or a stage: NAME, NAME#STAGE, NAME@latest,
    NAME@greatest or NAME@vX.Y.Z. REPO may be a path or a URL (read without cloning)."""
    select = one_of(name=select_name, version=select_version, stage=select_stage, ref=select_ref)
    if as_json and select is not None:
        raise UsageLine(f"--json and --{select} are mutually exclusive")
    options = ViewOptions.from_flags(
        registered_only, deprecated, assignments_per_version, versions_per_stage, sort
    )
    repo = readable_path(repo)
    if as_json:
        request = ShowRequest(
            name,
            repo,
            registered_only,
            deprecated,
            assignments_per_version,
            versions_per_stage,
            sort,
        )
        click.echo(show_json_text(request), nl=False)
        return
    _show_table(read_registry(repo), name, options, select=select, plain=plain)


def show_shortcut(repo: str, shortcut: str, select: str, options: ViewOptions) -> None:
    """One column of `show SHORTCUT` (`which`, `latest`): the same lines gto prints."""
    _show_table(read_registry(readable_path(repo)), shortcut, options, select=select, plain=False)


def _show_table(
    registry: Registry, name: str | None, options: ViewOptions, *, select: str | None, plain: bool
) -> None:
    if name is None:
        document = registry_document(registry.state, options, registry.config.stages)
        headers, rows = _registry_table(registry, document)
    else:
        listed = show_versions(registry, name, options)
        headers, rows = _versions_table(registry.state, listed)
    _print_table(headers, rows, select=select, plain=plain)


def _short(value: str) -> str:
    return value[:7] if is_hexsha(value) else value


def _registry_table(
    registry: Registry, document: dict[str, Any]
) -> tuple[list[str], list[list[str]]]:
    stages = registry_stages(registry.state, registry.config.stages)
    rows = []
    for name, entry in sorted(document.items()):
        label = name if entry["registered"] else f"*{name}"
        cells = [entry["stage"][s] for s in stages]
        shown = [", ".join(_short(v) for v in c.split(", ")) if c else "-" for c in cells]
        rows.append([label, _short(entry["version"]) if entry["version"] else "-", *shown])
    return ["name", "latest", *(f"#{s}" for s in stages)], rows


def _versions_table(
    state: RegistryState, listed: list[ListedVersion]
) -> tuple[list[str], list[list[str]]]:
    rows = []
    for row in listed:
        version = row.version
        registered = state.artifacts[version.artifact].is_registered
        stages = ", ".join(dict.fromkeys(s.stage for s in row.stages))
        rows.append(
            [
                version.artifact if registered else f"*{version.artifact}",
                _short(version.name),
                stages,
                str(version.authoring_event.time.to_datetime()),
                _short(version.authoring_event.ref),
            ]
        )
    return ["artifact", "version", "stage", "created_at", "ref"], rows


def _print_table(
    headers: list[str], rows: list[list[str]], *, select: str | None, plain: bool
) -> None:
    if select is not None:
        if not rows:
            return
        if select not in headers:
            raise CommandError(f"Cannot apply --{select}")
        column = headers.index(select)
        for row in rows:
            click.echo(row[column])
        return
    click.echo(render_table(headers, rows, plain=plain) if rows else EMPTY)


@click.command(
    "history",
    epilog=examples(
        "gitstage history                   # every event, newest first",
        "gitstage history churn --asc",
        "gitstage history churn --json -r https://git.example/registry.git",
    ),
)
@click.argument("name", required=False)
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print gto's history JSON.")
@click.option("--asc", "--ascending", "ascending", is_flag=True, help="Oldest first.")
@click.option("--plain", is_flag=True, help="Print a table without borders.")
@one_line_errors
def history_command(
    name: str | None, repo: str, as_json: bool, ascending: bool, plain: bool
) -> None:
    """Every registration, assignment and deprecation, newest first."""
    document = history_document(read_registry(readable_path(repo)).state, name, ascending)
    if as_json:
        print_json(document)
        return
    headers = ["timestamp", "artifact", "event", "version", "stage", "commit", "ref"]
    rows = [
        [
            str(r["timestamp"]).replace("T", " "),
            r["artifact"],
            r["event"],
            _short(r["version"] or "") or "-",
            r["stage"] or "-",
            r["commit"][:7],
            _short(r["ref"]),
        ]
        for r in document
    ]
    click.echo(render_table(headers, rows, plain=plain) if rows else EMPTY)


@click.command(
    "check-ref",
    epilog=examples(
        'gitstage check-ref "$GITHUB_REF" --stage     # in CI: which stage a pushed tag assigned',
        "gitstage check-ref 'churn#prod#7' --version",
        "gitstage check-ref refs/tags/churn@v1.2.0 --json",
    ),
)
@click.argument("ref")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON.")
@click.option("--name", "select_name", is_flag=True, help="Print the artifact name.")
@click.option("--version", "select_version", is_flag=True, help="Print the version.")
@click.option("--stage", "select_stage", is_flag=True, help="Print the stage.")
@click.option("--event", "select_event", is_flag=True, help="Print the event type.")
@one_line_errors
def check_ref_command(
    ref: str,
    repo: str,
    as_json: bool,
    select_name: bool,
    select_version: bool,
    select_stage: bool,
    select_event: bool,
) -> None:
    """What a GTO tag did (for CI triggered by a tag push). Prints nothing for other refs."""
    chosen = one_of(
        json=as_json,
        name=select_name,
        version=select_version,
        stage=select_stage,
        event=select_event,
    )
    select = "artifact" if chosen == "name" else chosen
    events = events_of_ref(readable_path(repo), ref)
    if len(events) > 1:
        raise CommandError(f"ref {ref} created {len(events)} events; expected one")
    if not events:
        return
    event = events[0]
    if as_json:
        print_json(event)
    elif select is not None:
        value = event.get(select)
        if value is not None:
            click.echo(value)
    else:
        click.echo(_describe_event(event))


def _describe_event(event: dict[str, Any]) -> str:
    kind, artifact = event["event"], event["artifact"]
    if kind in ("assignment", "unassignment"):
        verb = "assigned to" if kind == "assignment" else "unassigned from"
        return (
            f'Stage "{event["stage"]}" was {verb} version "{event["version"]}" '
            f'of artifact "{artifact}"'
        )
    if kind in ("registration", "deregistration"):
        return f'Version "{event["version"]}" of artifact "{artifact}" was {kind[:-3]}ed'
    return f'Artifact "{artifact}" was deprecated'


@click.command(
    "describe",
    epilog=examples(
        "gitstage describe churn            # the entry at HEAD",
        "gitstage describe churn@HEAD~3 --path",
        "gitstage describe 'churn#prod'     # the entry at the commit prod holds",
        "gitstage describe churn@v1.0.0 -r https://git.example/registry.git",
    ),
)
@click.argument("name")
@repo_option
@click.option("--rev", default=None, help="Revision to read artifacts.yaml at (default HEAD).")
@click.option("--path", "field_path", is_flag=True, help="Print the path only.")
@click.option("--type", "field_type", is_flag=True, help="Print the type only.")
@click.option("--description", "field_description", is_flag=True, help="Print the description.")
@one_line_errors
def describe_command(
    name: str,
    repo: str,
    rev: str | None,
    field_path: bool,
    field_type: bool,
    field_description: bool,
) -> None:
    """An artifact's artifacts.yaml entry: NAME[@REV], or a shortcut like NAME#prod."""
    field = one_of(path=field_path, type=field_type, description=field_description)
    if rev is None and "@" in name and not parse_shortcut(name).is_shortcut:
        name, rev = name.split("@", 1)
    try:
        annotation = describe_artifact(repo, name, rev)
    except ValueError as error:
        raise CommandError(str(error)) from None
    if annotation is None:
        raise CommandError(_no_entry(repo, name, rev))
    if field is None:
        document = plain(annotation.as_dict())
        problem = _unprintable(document, "")
        if problem is not None:
            shown = parse_shortcut(name).name
            raise CommandError(f"artifact '{shown}': {problem}, which JSON cannot print")
        print_json(document)
    elif getattr(annotation, field) is not None:
        click.echo(getattr(annotation, field))


def _no_entry(repo: str, name: str, rev: str | None) -> str:
    """Why describe found nothing: no such version or stage, or no entry at that commit."""
    shortcut = parse_shortcut(name)
    if not shortcut.is_shortcut:
        return f"artifacts.yaml has no entry for '{name}' at {rev or 'HEAD'}"
    if not show_versions(read_registry(readable_path(repo)), name, ViewOptions()):
        if shortcut.stage is not None:
            return f"no version of '{shortcut.name}' is in stage '{shortcut.stage}'"
        if shortcut.version is not None:
            return f"version '{shortcut.version}' of '{shortcut.name}' does not exist"
        return f"'{shortcut.name}' has no version (none registered, or it is deprecated)"
    return f"artifacts.yaml has no entry for '{shortcut.name}' at {name}'s commit"


def _unprintable(value: Any, where: str) -> str | None:
    """The first value (YAML `!!binary`, `!!set`...) that JSON has no form for, and where."""
    if isinstance(value, dict):
        found = (_unprintable(item, f"{where}.{key}") for key, item in value.items())
        return next((problem for problem in found if problem is not None), None)
    if isinstance(value, list):
        found = (_unprintable(item, f"{where}[{i}]") for i, item in enumerate(value))
        return next((problem for problem in found if problem is not None), None)
    if value is None or isinstance(value, str | int | float):
        return None
    return f"{where.lstrip('.')} holds a {type(value).__name__} value ({repr(value)[:40]})"

"""`gitstage register`, `assign`, `unassign`, `deregister` and `deprecate`: GTO's write commands,
with GTO's tag forms, refusals and output, plus tagger options and signed promotions."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from gitstage.adapters.git.partial import RemoteError
from gitstage.adapters.git.repository import RepositoryError
from gitstage.adapters.git.signatures import SigningError
from gitstage.adapters.git.writer import WriteError
from gitstage.cli.errors import EXPECTED_ERRORS, CommandError
from gitstage.cli.flags import examples
from gitstage.cli.oneline import UsageLine
from gitstage.domain.policy.rules import PolicyFileError
from gitstage.domain.registry.tags import Action
from gitstage.domain.write.errors import WriteRefusal
from gitstage.domain.write.git_dates import InvalidDateError, parse_git_date
from gitstage.domain.write.plan import NewTag
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
from gitstage.writing import PolicyRefusal, WriteOptions, WriteOutcome, execute

P = ParamSpec("P")
R = TypeVar("R")

WRITE_ERRORS: tuple[type[Exception], ...] = (
    *EXPECTED_ERRORS,
    WriteRefusal,
    WriteError,
    RemoteError,
    SigningError,
    PolicyRefusal,
    PolicyFileError,
    InvalidDateError,
    RepositoryError,
)


def _one_line(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except WRITE_ERRORS as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise CommandError(lines[0] if lines else type(error).__name__) from None

    return wrapper


def _write_options(command: Callable[P, R]) -> Callable[P, R]:
    """The options every write command shares (GTO's, then gitstage's own)."""
    options = [
        click.option(
            "-r",
            "--repo",
            default=".",
            show_default=True,
            help="Local repository, or a URL (read without cloning; always pushed).",
        ),
        click.option("-m", "--message", default=None, help="Message to annotate the tag with."),
        click.option(
            "--simple",
            type=click.Choice([s.value for s in Simple]),
            default="auto",
            show_default=True,
            help="Tag form: 'true' without '#N', 'false' with it.",
        ),
        click.option("--force", is_flag=True, help="Create the tag even if it is in effect."),
        click.option("--push", is_flag=True, help="Push the tag(s) to 'origin'."),
        click.option("--author", default=None, help="Tagger name (default: git config)."),
        click.option("--author-email", default=None, help="Tagger email (default: git config)."),
        click.option(
            "--date",
            default=None,
            help="Tagger date, '@EPOCH +HHMM' or ISO 8601 (default: GIT_COMMITTER_DATE, then now).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command(
    "register",
    epilog=examples(
        "gitstage register churn                       # churn@v0.0.1 at HEAD (or the next patch)",
        "gitstage register churn HEAD --version v1.2.0 --push",
        "gitstage register churn try-large-dataset --bump-minor -r https://git.example/ml/reg.git",
    ),
)
@click.argument("name")
@click.argument("ref", default="HEAD")
@click.option("--version", "--ver", "version", default=None, help="Version name, vX.Y.Z.")
@click.option("--bump-major", is_flag=True, help="Bump the major version.")
@click.option("--bump-minor", is_flag=True, help="Bump the minor version.")
@click.option("--bump-patch", is_flag=True, help="Bump the patch version (the default).")
@_write_options
@_one_line
def register_command(
    name: str,
    ref: str,
    version: str | None,
    bump_major: bool,
    bump_minor: bool,
    bump_patch: bool,
    repo: str,
    message: str | None,
    simple: str,
    force: bool,
    push: bool,
    author: str | None,
    author_email: str | None,
    date: str | None,
) -> None:
    """Register a version of artifact NAME at REF (default HEAD): tag NAME@vX.Y.Z."""
    bumps = [
        b
        for b, on in ((Bump.MAJOR, bump_major), (Bump.MINOR, bump_minor), (Bump.PATCH, bump_patch))
        if on
    ]
    if len(bumps) + (version is not None) > 1:
        raise WriteRefusal("Need to specify either version or single bump argument")
    request = RegisterRequest(
        name, ref, version, bumps[0] if bumps else None, message, Simple(simple), force
    )
    _run(request, repo, push, author, author_email, date)


@click.command(
    "assign",
    epilog=examples(
        "gitstage assign churn --version v1.2.0 --stage prod --push",
        "gitstage promote churn HEAD --stage staging      # promote: the same command",
        "gitstage assign churn --version v1.2.0 --stage prod -r https://git.example/ml/reg.git",
    ),
)
@click.argument("name")
@click.argument("ref", required=False)
@click.option("--stage", required=True, help="Stage to assign.")
@click.option(
    "--version",
    default=None,
    help="With REF: the version to register there; without: the version to assign.",
)
@click.option(
    "--sr",
    "--skip-registration",
    "skip_registration",
    is_flag=True,
    help="Don't register a version at REF (the version is named by the commit).",
)
@click.option(
    "--sign-key",
    default=None,
    help="SSH key to sign the tag with (`ssh-keygen -Y sign`; git's format).",
)
@_write_options
@_one_line
def assign_command(
    name: str,
    ref: str | None,
    stage: str,
    version: str | None,
    skip_registration: bool,
    sign_key: str | None,
    repo: str,
    message: str | None,
    simple: str,
    force: bool,
    push: bool,
    author: str | None,
    author_email: str | None,
    date: str | None,
) -> None:
    """Assign STAGE to a version of NAME: at REF (default HEAD) or --version; tag NAME#STAGE#N.

    A commit without a version is registered first, unless --sr.
    """
    target: AtRef | ExistingVersion
    if ref is None and version is not None:
        target = ExistingVersion(version)
    else:
        target = AtRef(ref or "HEAD", version, skip_registration)
    request = AssignRequest(name, stage, target, message, Simple(simple), force)
    _run(request, repo, push, author, author_email, date, sign_key)


@click.command(
    "unassign",
    epilog=examples(
        "gitstage unassign churn prod --push    # prod falls back to its previous holder",
        "gitstage unassign churn prod --version v1.2.0",
    ),
)
@click.argument("name")
@click.argument("ref_and_stage", nargs=-1, required=True, metavar="[REF] STAGE")
@click.option("--version", default=None, help="The version to unassign (instead of REF).")
@click.option("-d", "--delete", is_flag=True, help="Delete the stage's tags instead.")
@_write_options
@_one_line
def unassign_command(
    name: str,
    ref_and_stage: tuple[str, ...],
    version: str | None,
    delete: bool,
    repo: str,
    message: str | None,
    simple: str,
    force: bool,
    push: bool,
    author: str | None,
    author_email: str | None,
    date: str | None,
) -> None:
    """Unassign STAGE from the version of NAME at REF (default HEAD) or --version: NAME#STAGE!#N.

    GTO spells it `deprecate NAME VERSION STAGE`, which works too.
    """
    if len(ref_and_stage) > 2:
        raise UsageLine("expected [REF] STAGE (see 'gitstage unassign --help')")
    ref = ref_and_stage[0] if len(ref_and_stage) == 2 else None
    if ref is None and version is None:
        ref = "HEAD"
    request = UnassignRequest(
        name,
        ref_and_stage[-1],
        VersionSelector(version, ref),
        message,
        Simple(simple),
        force,
        delete,
    )
    _run(request, repo, push, author, author_email, date)


@click.command(
    "deregister",
    epilog=examples("gitstage deregister churn --version v1.2.0 --push"),
)
@click.argument("name")
@click.argument("ref", required=False)
@click.option("--version", default=None, help="The version to deregister (instead of REF).")
@click.option("-d", "--delete", is_flag=True, help="Delete all the version's tags instead.")
@_write_options
@_one_line
def deregister_command(
    name: str,
    ref: str | None,
    version: str | None,
    delete: bool,
    repo: str,
    message: str | None,
    simple: str,
    force: bool,
    push: bool,
    author: str | None,
    author_email: str | None,
    date: str | None,
) -> None:
    """Deregister the version of NAME at REF (default HEAD) or --version: tag NAME@vX.Y.Z!."""
    if ref is None and version is None:
        ref = "HEAD"
    request = DeregisterRequest(
        name, VersionSelector(version, ref), message, Simple(simple), force, delete
    )
    _run(request, repo, push, author, author_email, date)


@click.command(
    "deprecate",
    epilog=examples(
        "gitstage deprecate churn --push                # the whole artifact",
        "gitstage deprecate churn --delete              # remove its tags instead (GTO --delete)",
    ),
)
@click.argument("name")
@click.argument("version", required=False)
@click.argument("stage", required=False)
@click.option("--ref", default=None, help="Where the deprecation tag goes (artifact only).")
@click.option("-d", "--delete", is_flag=True, help="Delete the tag(s) instead.")
@_write_options
@_one_line
def deprecate_command(
    name: str,
    version: str | None,
    stage: str | None,
    ref: str | None,
    delete: bool,
    repo: str,
    message: str | None,
    simple: str,
    force: bool,
    push: bool,
    author: str | None,
    author_email: str | None,
    date: str | None,
) -> None:
    """GTO's spelling: deprecate NAME (the artifact), NAME VERSION (deregister it) or
    NAME VERSION STAGE (unassign it)."""
    request: WriteRequest
    if stage:
        request = UnassignRequest(
            name, stage, VersionSelector(version=version), message, Simple(simple), force, delete
        )
    elif version:
        request = DeregisterRequest(
            name, VersionSelector(version=version), message, Simple(simple), force, delete
        )
    else:
        request = DeprecateRequest(name, ref, message, Simple(simple), force, delete)
    _run(request, repo, push, author, author_email, date)


def _run(
    request: WriteRequest,
    repo: str,
    push: bool,
    author: str | None,
    author_email: str | None,
    date: str | None,
    sign_key: str | None = None,
) -> None:
    options = WriteOptions(
        repo=repo,
        push=push,
        author=author,
        author_email=author_email,
        date=parse_git_date(date) if date else None,
        sign_key=sign_key,
    )
    outcome = execute(request, options, progress=lambda line: click.echo(line, err=True))
    _report(outcome)


def _report(outcome: WriteOutcome) -> None:
    """GTO's lines, tag by tag; then what was pushed, or how to push it."""
    for tag in outcome.plan.created:
        click.echo(f"Created git tag '{tag.name}' that {_what(tag)}")
        if not outcome.pushed:
            _hint(tag.name, delete=False)
    for name in outcome.plan.deleted:
        click.echo(f"Deleted git tag '{name}'")
        if not outcome.pushed:
            _hint(name, delete=True)
    if outcome.pushed:
        for tag in outcome.plan.created:
            click.echo(f"Successfully pushed git tag {tag.name} on remote.")
        for name in outcome.plan.deleted:
            click.echo(f"Successfully deleted git tag {name} on remote.")


def _what(tag: NewTag) -> str:
    if tag.action is Action.REGISTER:
        return "registers version"
    if tag.action is Action.ASSIGN:
        return f"assigns stage to version '{tag.version}'"
    if tag.action is Action.UNASSIGN:
        return f"unassigns stage from version '{tag.version}'"
    if tag.action is Action.DEREGISTER:
        return "deregisters version"
    return "deprecates artifact"


def _hint(tag: str, *, delete: bool) -> None:
    click.echo("To push the changes upstream, run:")
    click.echo(f"    git push{' --delete ' if delete else ' '}origin {shlex.quote(tag)}")


WRITE_COMMANDS = (
    register_command,
    assign_command,
    unassign_command,
    deregister_command,
    deprecate_command,
)

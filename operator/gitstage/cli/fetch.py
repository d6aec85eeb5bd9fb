"""`gitstage fetch`: materialize an artifact at a pinned commit (the init container's job)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gitstage.adapters.fetch.destination import JOURNAL_NAME, is_bookkeeping
from gitstage.adapters.git.repository import RepositoryError
from gitstage.adapters.mirror.errors import MirrorError
from gitstage.cli.oneline import UsageLine, fail
from gitstage.domain.fetch.errors import (
    EXIT_CODES,
    BadInputError,
    FetchError,
    NotFoundError,
    TransportError,
)
from gitstage.domain.fetch.limits import (
    DEFAULT_STALL_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_SECONDS,
    FetchLimits,
    valid_seconds,
)
from gitstage.domain.fetch.manifest import MANIFEST_FILE
from gitstage.domain.registry.config import WrongConfigError
from gitstage.domain.registry.index import CorruptIndexError
from gitstage.domain.registry.selection import ConflictingSelectorsError, Selector
from gitstage.domain.registry.state import RegistryError
from gitstage.domain.repo_urls import redact
from gitstage.fetching import FetchResult, FetchSpec, fetch, fetch_selected, place

ENV_PREFIX = "GITSTAGE_FETCH_"
_EXIT_LINES = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES)
EPILOG = f"""\b
Every option can come from the environment (the operator's init container sets these):
  GITSTAGE_FETCH_REPO, GITSTAGE_FETCH_REV, GITSTAGE_FETCH_ARTIFACT, GITSTAGE_FETCH_PATH,
  GITSTAGE_FETCH_DEST, GITSTAGE_FETCH_VERSION, GITSTAGE_FETCH_STAGE, GITSTAGE_FETCH_MAX_BYTES,
  GITSTAGE_FETCH_TIMEOUT, GITSTAGE_FETCH_STALL_TIMEOUT

\b
Credentials, read from the environment only (never from argv, never printed):
  GITSTAGE_GIT_USERNAME, GITSTAGE_GIT_PASSWORD  HTTP basic auth for git
  GITSTAGE_GIT_TOKEN         a token, sent as the basic-auth password (user x-access-token
                             unless GITSTAGE_GIT_USERNAME is set)
  GITSTAGE_GIT_BEARER_TOKEN  sent as 'Authorization: Bearer' to the git server
  GITSTAGE_DVC_USERNAME, GITSTAGE_DVC_PASSWORD  basic auth for an HTTP DVC remote, sent only
                             to GITSTAGE_DVC_ORIGIN (scheme://host[:port], required with them)
  AWS_*, AWS_ENDPOINT_URL    S3 DVC remotes (boto3; a remote's endpointurl comes first)
  GITSTAGE_CACHE_DIR         cache of the Python API (default ~/.cache/gitstage/artifacts)
  GITSTAGE_GIT_FOLLOW_REDIRECTS, GITSTAGE_DVC_FOLLOW_REDIRECTS  follow redirects to another
                             host (never with credentials); refused by default
Git credentials go only to the requested repository's host, never to linked hosts.

\b
DEST receives a file artifact as DEST/<name> and a directory artifact's contents as DEST's
contents, plus .gitstage-manifest.json. A DEST holding other files (a project directory) gets
the file only, as with -o; nothing else there is touched. A re-run with the same inputs is a
no-op. The path of the artifact is printed on stdout.

\b
Exit codes:
{_EXIT_LINES}
"""


EXAMPLES = """\b
Examples (the `dvc get` habit on the left):
  dvc get URL models/churn.pkl --rev churn@v1.2.0 -o churn.pkl
  gitstage fetch churn -r URL --version v1.2.0 -o churn.pkl
  dvc get URL models/churn.pkl --rev main          (whatever main holds)
  gitstage fetch churn -r URL --stage prod -o .    (the version prod holds, into ./churn.pkl)
  gitstage fetch churn -r URL                      (the latest version, into the cache)
  gitstage fetch -r URL --path data/vocab.txt --rev v3 -o vocab.txt
"""


def _option(name: str, help_text: str, **kwargs: object) -> click.Option:
    envvar = ENV_PREFIX + name.upper().replace("-", "_")
    return click.Option([f"--{name}"], envvar=envvar, show_envvar=True, help=help_text, **kwargs)  # type: ignore[arg-type]


class Seconds(click.FloatRange):
    """A timeout: more than 0, at most MAX_SECONDS, and a number (`nan` and `inf` are refused)."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True, max=MAX_SECONDS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not valid_seconds(seconds):  # NaN passes the range's comparisons
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


class OutputPath(click.Path):
    """A path that is not empty: `-o ''` is a mistake, not the current directory."""

    def __init__(self) -> None:
        super().__init__(path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str | os.PathLike) and not os.fspath(value):
            self.fail("the path is empty; give a file or directory (. for here)", param, ctx)
        return super().convert(value, param, ctx)


def _seconds_option(name: str, help_text: str, default: float) -> click.Option:
    return _option(
        name, f"{help_text} In seconds.", type=Seconds(), default=default, show_default=True
    )


@click.command(
    "fetch",
    epilog=EXAMPLES + "\n" + EPILOG,
    params=[
        click.Argument(["name"], required=False),
        click.Option(
            ["-r", "--repo"],
            envvar=ENV_PREFIX + "REPO",
            show_envvar=True,
            required=True,
            help="Git URL or local path of the registry repository.",
        ),
        _option(
            "rev",
            "A commit SHA or tag to fetch as is; --version/--stage then only label the manifest"
            " (the operator's init container, which resolved them).",
        ),
        _option("artifact", "Artifact name (the same as NAME)."),
        _option("path", "Path in the repository; skips the artifacts.yaml lookup and links."),
        _option(
            "dest",
            "Directory gitstage manages: the artifact and its manifest (default: the cache).",
            type=OutputPath(),
        ),
        click.Option(
            ["-o", "--out"],
            type=OutputPath(),
            help="Copy the artifact here, as `dvc get -o`: a file to OUT (or into it, when a"
            " directory), a directory artifact to a new OUT. Nothing else is touched.",
        ),
        _option("version", "Fetch this registered version (e.g. v1.2.0)."),
        _option("stage", "Fetch the version this stage holds (e.g. prod)."),
        click.Option(["--latest"], is_flag=True, help="Fetch the latest version (the default)."),
        _option(
            "max-bytes", "Refuse artifacts larger than this many bytes.", type=click.IntRange(min=0)
        ),
        _seconds_option(
            "timeout",
            "Give up when the whole fetch (git transfers and downloads) takes longer.",
            DEFAULT_TIMEOUT_SECONDS,
        ),
        _seconds_option(
            "stall-timeout",
            "Give up when a transfer receives no data for this long.",
            DEFAULT_STALL_SECONDS,
        ),
        click.Option(
            ["--progress/--no-progress"],
            default=None,
            help="Progress meter on stderr (default: when stderr is a terminal).",
        ),
    ],
)
def fetch_command(
    name: str | None,
    repo: str,
    rev: str | None,
    artifact: str | None,
    path: str | None,
    dest: Path | None,
    out: Path | None,
    version: str | None,
    stage: str | None,
    latest: bool,
    max_bytes: int | None,
    timeout: float,
    stall_timeout: float,
    progress: bool | None,
) -> None:
    """Fetch artifact NAME from REPO: at a stage, a version, the latest version, or a commit.

    The registry resolves --stage, --version or --latest (the default) exactly as `gitstage show`
    does, and the manifest records what it resolved: version, commit, stage, and the tags.
    Only that commit is fetched (depth 1). The artifact is a file or directory tracked by git,
    or a DVC output (.dvc file or dvc.lock) pulled from the DVC remote configured at that commit
    (local path, HTTP, S3) with its md5 verified. Writes are atomic.
    """
    name = _one_name(name, artifact)
    if dest is not None and out is not None:
        raise UsageLine("give --dest or -o, not both")
    if rev is not None and latest:
        raise UsageLine("give --rev or --latest, not both")
    if dest is not None and _foreign(dest):
        dest, out = None, dest  # a project directory: place the file, touch nothing else
    with _one_line_failures():
        limits = FetchLimits(max_bytes, timeout, stall_timeout)
        result = _fetch(name, repo, rev, path, dest, version, stage, latest, limits, progress)
        placed = place(result, out) if out is not None else None
    click.echo(_summary(result), err=True)
    click.echo(str(placed or result.location))


@contextlib.contextmanager
def _one_line_failures() -> Iterator[None]:
    """Expected failures as `gitstage: error: ...` and the documented exit code."""
    try:
        yield
    except FetchError as error:
        fail(str(error), error.exit_code)
    except MirrorError as error:
        fail(str(error), TransportError.exit_code)
    except RepositoryError as error:  # the registry read at a local path that is not a repository
        fail(str(error), NotFoundError.exit_code)
    except (WrongConfigError, CorruptIndexError, RegistryError) as error:
        fail(str(error), BadInputError.exit_code)
    except OSError as error:
        fail(f"local I/O failed: {redact(str(error))}", 1)


def _foreign(dest: Path) -> bool:
    """A non-empty directory that gitstage did not write (a project, `--dest .`)."""
    return (
        dest.is_dir()
        and not (dest / MANIFEST_FILE).exists()
        and not (dest / JOURNAL_NAME).exists()  # a killed install of ours: recovered by fetch
        and any(not is_bookkeeping(entry.name) for entry in dest.iterdir())
    )


def _one_name(name: str | None, artifact: str | None) -> str | None:
    if name is not None and artifact is not None and name != artifact:
        raise UsageLine(f"NAME {name!r} and --artifact {artifact!r} differ")
    return name or artifact


def _fetch(
    name: str | None,
    repo: str,
    rev: str | None,
    path: str | None,
    dest: Path | None,
    version: str | None,
    stage: str | None,
    latest: bool,
    limits: FetchLimits,
    progress: bool | None,
) -> FetchResult:
    if rev is not None or name is None:
        # Pinned: the caller resolved it (or a plain path at a revision, HEAD by default).
        spec = FetchSpec(repo, rev or "HEAD", name, dest, path, version, stage, limits)
        return fetch(spec, progress=progress)
    if latest and (version or stage):
        raise UsageLine("give one of --stage, --version or --latest")
    try:
        selector = Selector(stage=stage, version=version)
    except ConflictingSelectorsError:
        raise UsageLine("give one of --stage, --version or --latest") from None
    selected = fetch_selected(
        name, repo, selector, path=path, dest=dest, limits=limits, progress=progress
    )
    return selected.result


def _summary(result: FetchResult) -> str:
    manifest = result.manifest
    what = manifest.artifact or manifest.request.path
    if manifest.version:
        what = f"{what} {manifest.version}"
    if manifest.stage and manifest.assignment_tag:
        what = f"{what} ({manifest.stage}, {manifest.assignment_tag})"
    where = f"{what} at {manifest.commit[:12]}"
    if not result.fetched:
        return f"gitstage: {where} is already in {result.dest}"
    links = len(manifest.sources) - 1
    via = f" via {links} link{'s' if links > 1 else ''}" if links else ""
    return (
        f"gitstage: fetched {where}{via} ({manifest.kind}, {len(manifest.files)} files,"
        f" {manifest.total_bytes} bytes) into {result.dest}"
    )

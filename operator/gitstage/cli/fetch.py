"""`gitstage fetch`: materialize an artifact at a pinned commit (the init container's job)."""

from __future__ import annotations

from pathlib import Path

import click

from gitstage.adapters.fetch.credentials import redact
from gitstage.cli.oneline import OneLineCommand, fail
from gitstage.domain.fetch_errors import EXIT_CODES, FetchError
from gitstage.fetching import FetchResult, FetchSpec, fetch

ENV_PREFIX = "GITSTAGE_FETCH_"
_EXIT_LINES = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES)
EPILOG = f"""\b
Every option can come from the environment (the operator's init container sets these):
  GITSTAGE_FETCH_REPO, GITSTAGE_FETCH_REV, GITSTAGE_FETCH_ARTIFACT, GITSTAGE_FETCH_PATH,
  GITSTAGE_FETCH_DEST, GITSTAGE_FETCH_VERSION, GITSTAGE_FETCH_STAGE, GITSTAGE_FETCH_MAX_BYTES

\b
Credentials, read from the environment only (never from argv, never printed):
  GITSTAGE_GIT_USERNAME, GITSTAGE_GIT_PASSWORD  HTTP basic auth for git
  GITSTAGE_GIT_TOKEN         a token, sent as the basic-auth password (user x-access-token
                             unless GITSTAGE_GIT_USERNAME is set)
  GITSTAGE_GIT_BEARER_TOKEN  sent as 'Authorization: Bearer' to the git server
  GITSTAGE_DVC_USERNAME, GITSTAGE_DVC_PASSWORD  basic auth for an HTTP DVC remote
  AWS_*, AWS_ENDPOINT_URL    S3 DVC remotes (only when boto3 is installed)
  GITSTAGE_CACHE_DIR         cache of the Python API (default ~/.cache/gitstage/artifacts)
Git credentials go only to the requested repository's host, never to linked hosts.

\b
DEST receives a file artifact as DEST/<name> and a directory artifact's contents as DEST's
contents, plus .gitstage-manifest.json. A re-run with the same inputs is a no-op. The path of the
artifact is printed on stdout.

\b
Exit codes:
{_EXIT_LINES}
"""


def _option(name: str, help_text: str, **kwargs: object) -> click.Option:
    envvar = ENV_PREFIX + name.upper().replace("-", "_")
    return click.Option([f"--{name}"], envvar=envvar, show_envvar=True, help=help_text, **kwargs)  # type: ignore[arg-type]


@click.command(
    "fetch",
    cls=OneLineCommand,
    epilog=EPILOG,
    params=[
        _option("repo", "Git URL or local path of the registry repository.", required=True),
        _option(
            "rev", "The commit SHA to fetch (a tag name, even a GTO one, works too).", required=True
        ),
        _option("artifact", "Artifact name, as in artifacts.yaml or GTO tags.", required=True),
        _option("path", "Path in the repository; skips the artifacts.yaml lookup and links."),
        _option(
            "dest", "Directory to materialize into.", required=True, type=click.Path(path_type=Path)
        ),
        _option("version", "Version recorded in the manifest (e.g. v1.2.0)."),
        _option("stage", "Stage recorded in the manifest (e.g. prod)."),
        _option(
            "max-bytes", "Refuse artifacts larger than this many bytes.", type=click.IntRange(min=0)
        ),
        click.Option(
            ["--progress/--no-progress"],
            default=None,
            help="Progress meter on stderr (default: when stderr is a terminal).",
        ),
    ],
)
def fetch_command(
    repo: str,
    rev: str,
    artifact: str,
    path: str | None,
    dest: Path,
    version: str | None,
    stage: str | None,
    max_bytes: int | None,
    progress: bool | None,
) -> None:
    """Fetch ARTIFACT exactly as registered at commit REV of REPO into DEST.

    Only that commit is fetched (depth 1). The artifact is a file or directory tracked by git,
    or a DVC output (.dvc file or dvc.lock) pulled from the DVC remote configured at that commit
    (local path, HTTP, S3) with its md5 verified. Writes are atomic.
    """
    spec = FetchSpec(repo, rev, artifact, dest, path, version, stage, max_bytes)
    try:
        result = fetch(spec, progress=progress)
    except FetchError as error:
        fail(str(error), error.exit_code)
    except OSError as error:
        fail(f"local I/O failed: {redact(str(error))}", 1)
    click.echo(_summary(result), err=True)
    click.echo(str(result.location))


def _summary(result: FetchResult) -> str:
    manifest = result.manifest
    where = f"{manifest.artifact} at {manifest.commit[:12]}"
    if not result.fetched:
        return f"gitstage: {where} is already in {result.dest}"
    links = len(manifest.sources) - 1
    via = f" via {links} link{'s' if links > 1 else ''}" if links else ""
    return (
        f"gitstage: fetched {where}{via} ({manifest.kind}, {len(manifest.files)} files,"
        f" {manifest.total_bytes} bytes) into {result.dest}"
    )

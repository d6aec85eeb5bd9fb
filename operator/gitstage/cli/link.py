"""`gitstage link`: point an artifact of this registry at one in another repository (`mlem link`).

The link is written into artifacts.yaml in the work tree (commit and push it as usual) and is
pinned: its rev must be a tag or a commit of the source repository, checked with one listing of
that repository's refs. A branch moves, so a link to one is refused (`--unpin` too).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.index_file import write_link
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.adapters.git.shallow_fetch import remote_refs
from gitstage.cli.flags import examples
from gitstage.cli.oneline import OneLineCommand, UsageLine, fail
from gitstage.domain.check.problems import pin_problem
from gitstage.domain.fetch.errors import FetchError
from gitstage.domain.fetch.links import ArtifactLink
from gitstage.domain.registry.index import CorruptIndexError
from gitstage.domain.registry.names import is_valid_name
from gitstage.domain.repo_urls import redact, split_userinfo


@click.command(
    "link",
    cls=OneLineCommand,
    epilog=examples(
        "gitstage link churn --source-repo https://git.example/team/churn.git \\",
        "    --rev churn@v1.2.0 --artifact churn       # mlem link, pinned to a tag",
        "gitstage link vocab --source-repo https://git.example/data.git --rev 3f6c0e1... \\",
        "    --path data/vocab.txt",
        "gitstage check --links                        # in CI: every link pinned and there",
    ),
)
@click.argument("name")
@click.option("--source-repo", required=True, help="The repository that holds the bytes.")
@click.option("--rev", required=True, help="A tag or commit SHA of it (never a branch).")
@click.option("--path", default=None, help="The file or directory there.")
@click.option("--artifact", default=None, help="Or the artifact there (its artifacts.yaml path).")
@click.option("-r", "--repo", default=".", show_default=True, help="This registry's work tree.")
@click.option("--unpin", is_flag=True, hidden=True)
def link_command(
    name: str,
    source_repo: str,
    rev: str,
    path: str | None,
    artifact: str | None,
    repo: str,
    unpin: bool,
) -> None:
    """Link artifact NAME here to a path or an artifact of another repository, at a fixed rev."""
    if unpin:
        raise UsageLine("links are always pinned: --unpin is refused (give a tag or a commit)")
    if (path is None) == (artifact is None):
        raise UsageLine("give exactly one of --path or --artifact")
    if not is_valid_name(name):
        raise UsageLine(f"invalid artifact name {name!r}")
    fields = {"repo": redact(source_repo), "rev": rev}
    fields.update({"path": path} if path is not None else {"artifact": str(artifact)})
    try:
        link = ArtifactLink.model_validate(fields)
    except ValueError as error:
        raise UsageLine(str(error).splitlines()[-1].strip()) from None
    try:
        workdir = _workdir(repo)
        _require_pinned(name, link, source_repo)
        written = write_link(workdir, name, fields)
    except (FetchError, RepositoryError, CorruptIndexError) as error:
        fail(str(error), 1)
    click.echo(f"Linked {name} to {link.repo}@{rev} in {written}; commit and push it.")


def _workdir(repo: str) -> Path:
    git = open_repository(repo)
    if git.workdir is None:
        raise RepositoryError(f"{repo} is a bare repository: link needs a work tree")
    return Path(git.workdir)


def _require_pinned(name: str, link: ArtifactLink, url: str) -> None:
    clean, user, password = split_userinfo(url)
    credentials = GitCredentials.from_env(os.environ, user, password)
    with tempfile.TemporaryDirectory(prefix="gitstage-link-") as scratch:
        refs = remote_refs(
            clean, credentials=credentials, environ=os.environ, workdir=Path(scratch)
        )
    problem = pin_problem(f"link of {name}", link, refs)
    if problem is not None:
        raise FetchError(str(problem))

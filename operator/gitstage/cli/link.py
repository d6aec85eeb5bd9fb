"""`gitstage link`: point an artifact of this registry at one in another repository (`mlem link`).

The link is written into artifacts.yaml in the work tree (commit and push it as usual) and is
pinned: its rev must be a tag or a commit of the source repository, checked with one listing of
that repository's refs. A branch moves, so a link to one is refused (`--unpin` too). The linked
path or artifact must be there at that rev, fetchable: the rules of `gitstage check --links`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from pydantic import ValidationError

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.index_file import linked_index, write_link
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.adapters.git.shallow_fetch import fetch_commit, remote_refs
from gitstage.cli.flags import examples
from gitstage.cli.oneline import UsageLine, fail
from gitstage.domain.check.problems import link_target_problems, pin_problem
from gitstage.domain.fetch.errors import FetchError
from gitstage.domain.fetch.links import ArtifactLink, validation_problem
from gitstage.domain.fetch.repo_paths import safe_relative
from gitstage.domain.registry.index import CorruptIndexError
from gitstage.domain.registry.names import is_valid_name
from gitstage.domain.repo_urls import redact, split_userinfo


@click.command(
    "link",
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
    link = _validated(fields)
    try:
        workdir = _workdir(repo)
        linked_index(workdir, name, fields)  # refused before any network: the file is kept
        _require_target(name, link, source_repo)
        written = write_link(workdir, name, fields)
    except (FetchError, RepositoryError, CorruptIndexError) as error:
        fail(str(error), 1)
    click.echo(f"Linked {name} to {link.repo}@{rev} in {written}; commit and push it.")


FLAGS = {"repo": "--source-repo", "rev": "--rev", "path": "--path", "artifact": "--artifact"}


def _validated(fields: dict[str, str]) -> ArtifactLink:
    """The link the flags give, checked as `check --links` checks a link (UsageLine if not)."""
    try:
        link = ArtifactLink.model_validate(fields)
    except ValidationError as error:
        field, message = validation_problem(error)
        flag = FLAGS.get(field, field)
        raise UsageLine(f"{flag} {fields.get(field, '')!r}: {message}") from None
    if link.path is not None:
        try:
            safe_relative(link.path, "--path")
        except FetchError as error:
            raise UsageLine(str(error)) from None
    return link


def _workdir(repo: str) -> Path:
    git = open_repository(repo)
    if git.workdir is None:
        raise RepositoryError(f"{repo} is a bare repository: link needs a work tree")
    return Path(git.workdir)


def _require_target(name: str, link: ArtifactLink, url: str) -> None:
    """Pinned, and its path or artifact present and fetchable there: `check --links`' rules."""
    clean, user, password = split_userinfo(url)
    credentials = GitCredentials.from_env(os.environ, user, password)
    subject = f"link of {name}"
    with tempfile.TemporaryDirectory(prefix="gitstage-link-") as scratch:
        refs = remote_refs(
            clean, credentials=credentials, environ=os.environ, workdir=Path(scratch)
        )
        problem = pin_problem(subject, link, refs)
        if problem is not None:
            raise FetchError(str(problem))
        fetched = fetch_commit(
            clean, link.rev, Path(scratch), credentials=credentials, environ=os.environ
        )
        problems = link_target_problems(subject, fetched.tree, name, link)
    if problems:
        raise FetchError(str(problems[0]))

"""`gitstage check`: a registry's CI gate, one line per problem on stdout."""

from __future__ import annotations

import click

from gitstage.adapters.git.repository import RepositoryError
from gitstage.checking import check_repository
from gitstage.cli.flags import examples
from gitstage.cli.oneline import fail

EPILOG = """\b
Checks: every tag that looks like a GTO tag parses (and is annotated, and is not '@created');
artifacts.yaml at HEAD is valid for GTO (names included) and every link names a revision;
every registered version's path exists at its commit and can be fetched (no escaping
symlinks, no git-lfs pointers, DVC 3 outputs). .gto must be valid. With a promotion policy
(.gitstage/policy.yaml at HEAD): every assignment in history obeys it (allowed stages, required
prior stages, signatures by trusted keys).

\b
Exit codes: 0 no problems, 1 problems found (one line each on stdout), 2 not a repository.
"""


@click.command(
    "check",
    epilog=EPILOG
    + "\n\n"
    + examples(
        "gitstage check                     # in the registry's CI, on a checkout with its tags",
        "gitstage check --links             # also: every link pinned and fetchable",
    ),
)
@click.option(
    "--repo",
    "-r",
    default=".",
    show_default=True,
    help="Local registry repository (a checkout with all tags fetched).",
)
@click.option(
    "--links",
    is_flag=True,
    help="Resolve every link of artifacts.yaml at HEAD in its repository: a branch rev, a"
    " missing rev, path or artifact is a problem.",
)
def check_command(repo: str, links: bool) -> None:
    """Check a GTO registry for problems that would break GTO or gitstage."""
    try:
        report = check_repository(repo, links=links)
    except RepositoryError as error:
        fail(str(error), 2)
    for problem in report.problems:
        click.echo(str(problem))
    count = len(report.problems)
    summary = f"{report.tags} tags, {report.versions} registered versions checked"
    if report.assignments is not None:
        summary += f", {report.assignments} assignments checked against the policy"
    if report.links is not None:
        summary += f", {report.links} links resolved"
    click.echo(f"gitstage check: {count} problem{'s' * (count != 1)} ({summary})", err=True)
    if count:
        raise click.exceptions.Exit(1)

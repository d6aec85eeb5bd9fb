"""GTO's other spellings: `stages` (gto 1.10) and `latest` / `which` (gto 0.2, now shortcuts).

`which NAME STAGE` prints what `gto show NAME#STAGE --version` prints, and `latest NAME` what
`gto show NAME@latest --version` prints (`--ref`: the registration tag instead), so scripts
written for either keep working.
"""

from __future__ import annotations

import click

from gitstage.adapters.git.reader import read_registry
from gitstage.adapters.mirror.locate import readable_path
from gitstage.cli.errors import one_line_errors
from gitstage.cli.flags import examples, one_of
from gitstage.cli.show import print_json, repo_option, show_shortcut
from gitstage.cli.show_json import SORTS
from gitstage.domain.registry.views import ViewOptions, registry_stages, used_stages


@click.command(
    "stages",
    epilog=examples(
        "gitstage stages                    # .gto's stages, else the ones in use",
        "gitstage stages --used --json -r https://git.example/registry.git",
    ),
)
@repo_option
@click.option("--allowed", is_flag=True, help="Only the stages .gto allows.")
@click.option("--used", is_flag=True, help="Only the stages some version holds now.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, as gto does.")
@one_line_errors
def stages_command(repo: str, allowed: bool, used: bool, as_json: bool) -> None:
    """The registry's stages, as `gto stages` prints them."""
    which = one_of(allowed=allowed, used=used)
    registry = read_registry(readable_path(repo))
    configured = registry.config.stages
    stages: list[str] | None
    if which == "allowed":
        stages = configured
    elif which == "used":
        stages = used_stages(registry.state)
    else:
        stages = registry_stages(registry.state, configured)
    if as_json:
        print_json(stages)
        return
    for stage in stages or []:
        click.echo(stage)


@click.command(
    "latest",
    epilog=examples(
        "gitstage latest churn              # same as: gitstage show churn@latest --version",
        "gitstage latest churn --ref -r https://git.example/registry.git",
    ),
)
@click.argument("name")
@repo_option
@click.option("--ref", is_flag=True, help="Print the registration tag instead of the version.")
@one_line_errors
def latest_command(name: str, repo: str, ref: bool) -> None:
    """The latest (highest) version of NAME, as `gto show NAME@latest --version`."""
    show_shortcut(repo, f"{name}@latest", "ref" if ref else "version", ViewOptions())


@click.command(
    "which",
    epilog=examples(
        "gitstage which churn prod          # same as: gitstage show 'churn#prod' --version",
        "gitstage which churn prod --ref    # its registration tag",
        "gitstage which churn prod --vs -1  # every version still assigned to prod",
    ),
)
@click.argument("name")
@click.argument("stage")
@repo_option
@click.option("--ref", is_flag=True, help="Print the registration tag instead of the version.")
@click.option("--ro", "--registered-only", "registered_only", is_flag=True, help="Skip SHAs.")
@click.option("--av", "--assignments-per-version", "av", type=int, default=-1, show_default=True)
@click.option("--vs", "--versions-per-stage", "vs", type=int, default=1, show_default=True)
@click.option("--sort", type=click.Choice(list(SORTS)), default="timestamp", show_default=True)
@one_line_errors
def which_command(
    name: str, stage: str, repo: str, ref: bool, registered_only: bool, av: int, vs: int, sort: str
) -> None:
    """The version(s) in STAGE of NAME, as `gto show NAME#STAGE --version`."""
    options = ViewOptions.from_flags(registered_only, False, av, vs, sort)
    show_shortcut(repo, f"{name}#{stage}", "ref" if ref else "version", options)

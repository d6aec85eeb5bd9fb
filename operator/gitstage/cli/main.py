"""The `gitstage` command: a root click group and the subcommands hung on it.

Subcommands are registered lazily (`cli.add_lazy(name, "module:attribute")`): a command's module
is imported only when that command runs, so `gitstage show` never imports kopf or kubernetes.
`cli.add_command(...)` still works for commands that are already imported.
"""

from __future__ import annotations

import click

from gitstage import __version__
from gitstage.cli.lazy import LazyGroup


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitstage")
def cli() -> None:
    """Serve a GTO git model registry on Kubernetes."""


assert isinstance(cli, LazyGroup)
cli.add_lazy("show", "gitstage.cli.show:show_command")
cli.add_lazy("history", "gitstage.cli.show:history_command")
cli.add_lazy("check-ref", "gitstage.cli.show:check_ref_command")
cli.add_lazy("describe", "gitstage.cli.show:describe_command")
cli.add_lazy("operator", "gitstage.cli.operator:operator_command")
cli.add_lazy("crds", "gitstage.cli.crds:crds_command")
cli.add_lazy("dev", "gitstage.cli.dev:dev_group")
cli.add_lazy("fetch", "gitstage.cli.fetch:fetch_command")
cli.add_lazy("check", "gitstage.cli.check:check_command")
cli.add_lazy("register", "gitstage.cli.write:register_command")
cli.add_lazy("assign", "gitstage.cli.write:assign_command")
cli.add_lazy("unassign", "gitstage.cli.write:unassign_command")
cli.add_lazy("deregister", "gitstage.cli.write:deregister_command")
cli.add_lazy("deprecate", "gitstage.cli.write:deprecate_command")
cli.add_lazy("promote", "gitstage.cli.write:assign_command")  # gto's alias of assign
cli.add_lazy("stages", "gitstage.cli.spellings:stages_command")
cli.add_lazy("latest", "gitstage.cli.spellings:latest_command")
cli.add_lazy("which", "gitstage.cli.spellings:which_command")
cli.add_lazy("link", "gitstage.cli.link:link_command")
cli.add_lazy("get", "gitstage.cli.ops:get_group")
cli.add_lazy("reconcile", "gitstage.cli.ops:reconcile_command")
cli.add_lazy("suspend", "gitstage.cli.ops:suspend_command")
cli.add_lazy("resume", "gitstage.cli.ops:resume_command")
cli.add_lazy("ui", "gitstage.cli.ui:ui_command")

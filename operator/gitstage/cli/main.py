"""The `gitstage` command: a root click group and the subcommands hung on it."""

from __future__ import annotations

import click

from gitstage import __version__
from gitstage.cli.check import check_command
from gitstage.cli.fetch import fetch_command
from gitstage.cli.write import WRITE_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitstage")
def cli() -> None:
    """Serve a GTO git model registry on Kubernetes."""


def main() -> None:
    """Console-script entry point."""
    cli()


def _register_commands() -> None:
    from gitstage.cli.operator_cmd import crds_command, operator_command
    from gitstage.cli.show import (
        check_ref_command,
        describe_command,
        history_command,
        show_command,
    )

    for command in (show_command, history_command, check_ref_command, describe_command):
        cli.add_command(command)
    cli.add_command(operator_command)
    cli.add_command(crds_command)

    from gitstage.cli.dev import dev_group

    cli.add_command(dev_group)


_register_commands()
cli.add_command(fetch_command)
cli.add_command(check_command)
for _write_command in WRITE_COMMANDS:
    cli.add_command(_write_command)

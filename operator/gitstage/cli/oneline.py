"""One-line errors (`gitstage: error: ...`): usage errors (exit 2, raised for every command by
the root group, lazy.py) and failures (`fail`), not click's block or a traceback."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import NoReturn

import click

# Kubernetes mounts this file in every container and shows what is written there as the
# container's termination message (pod status), so the error reaches `kubectl get` and gitstage.
TERMINATION_LOG = Path("/dev/termination-log")


class UsageLine(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"gitstage: error: {self.format_message()}", err=True)


def usage_line(error: click.UsageError) -> click.ClickException:
    """Click's usage error in one line, with the help to read (`gitstage get registries`);
    a group run without a command still prints its help."""
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        return error
    path = error.ctx.command_path if error.ctx is not None else "gitstage"
    return UsageLine(f"{error.format_message()} (see '{path} --help')")


def fail(message: str, exit_code: int) -> NoReturn:
    """Print `gitstage: error: <first line>` on stderr and exit with `exit_code`."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    click.echo(f"gitstage: error: {first}", err=True)
    if TERMINATION_LOG.exists():
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(f"{first}\n")
    raise click.exceptions.Exit(exit_code)

"""Commands whose usage errors are one line (`gitstage: error: ...`, exit 2), not click's block."""

from __future__ import annotations

from typing import NoReturn

import click


class UsageLine(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"gitstage: error: {self.format_message()}", err=True)


class Failure(UsageLine):
    """A one-line failure with an explicit exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message.splitlines()[0] if message else "failed")
        self.exit_code = exit_code


class OneLineCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            hint = f" (see 'gitstage {self.name} --help')"
            raise UsageLine(error.format_message() + hint) from None


def fail(message: str, exit_code: int) -> NoReturn:
    raise Failure(message, exit_code)

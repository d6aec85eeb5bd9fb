"""A click group whose subcommands are imported on first use (click's documented LazyGroup).

`gitstage show` then imports the read path only, not kopf, kubernetes or the write commands.
"""

from __future__ import annotations

import importlib
import re

import click

from gitstage.cli.oneline import usage_line

# Modules of the `operator` extra (pyproject): a light client install lacks them.
OPERATOR_EXTRA = frozenset({"aiohttp", "cryptography", "kopf", "kubernetes", "prometheus_client"})
_OBJECT_ID_PREFIX = re.compile(r"^[0-9a-f]{40}: ")
# Commands whose extra is not `operator`.
EXTRA_OF = {"ui": "ui"}


class MissingExtra(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"gitstage: error: {self.format_message()}", err=True)


class FileErrorLine(click.ClickException):
    """An operating-system error no command expected (a file it cannot read or write, a lock
    left by a crashed git): one line naming the file instead of a traceback."""

    def show(self, file: object = None) -> None:
        click.echo(f"gitstage: error: {self.format_message()}", err=True)


def file_error_message(error: OSError) -> str:
    """What went wrong and where, in one line; a ref lock says how to recover from it."""
    if error.strerror and error.filename is not None:
        message = f"{error.strerror}: {error.filename}"
    else:
        message = (str(error).strip().splitlines() or [type(error).__name__])[0]
        # libgit2 says "<object id>: failed to lock file '...' for writing: ".
        message = _OBJECT_ID_PREFIX.sub("", message).rstrip(": ")
    if ".lock'" in message or str(error.filename or "").endswith(".lock"):
        message += (
            " (a git or gitstage command is running here, or one crashed: if none is running,"
            " delete that .lock file)"
        )
    return message


class LazyGroup(click.Group):
    """`add_lazy("name", "module:attribute")` registers a command without importing it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy: dict[str, str] = {}

    def add_lazy(self, name: str, target: str) -> None:
        self._lazy[name] = target

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self._lazy:
            try:
                command = _load(self._lazy[cmd_name])
            except ModuleNotFoundError as error:
                if (error.name or "").split(".")[0] not in OPERATOR_EXTRA:
                    raise
                extra = EXTRA_OF.get(cmd_name, "operator")
                raise MissingExtra(
                    f"gitstage {cmd_name} needs its extra: pip install 'gitstage[{extra}]'"
                ) from None
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise usage_line(error) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:  # any command's: an unknown one, a bad option
            raise usage_line(error) from None
        except BrokenPipeError:
            raise  # click's own handling: a closed pipe downstream is not an error
        except OSError as error:
            raise FileErrorLine(file_error_message(error)) from None


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command

"""A click group whose subcommands are imported on first use (click's documented LazyGroup).

`gitstage show` then imports the read path only, not kopf, kubernetes or the write commands.
"""

from __future__ import annotations

import importlib

import click

# Modules of the `operator` extra (pyproject): a light client install lacks them.
OPERATOR_EXTRA = frozenset({"aiohttp", "cryptography", "kopf", "kubernetes", "prometheus_client"})
# Commands whose extra is not `operator`.
EXTRA_OF = {"ui": "ui"}


class MissingExtra(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"gitstage: error: {self.format_message()}", err=True)


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


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command

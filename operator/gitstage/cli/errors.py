"""One-line errors for the CLI: known failures print `gitstage: error: ...` and exit non-zero."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from gitstage.adapters.git.repository import RepositoryError
from gitstage.adapters.mirror.errors import MirrorError
from gitstage.domain.registry.config import WrongConfigError
from gitstage.domain.registry.index import CorruptIndexError
from gitstage.domain.registry.names import InvalidNameError
from gitstage.domain.registry.semver import InvalidVersionError
from gitstage.domain.registry.state import RegistryError
from gitstage.domain.registry.views import ArtifactNotFoundError, ViewArgumentError

P = ParamSpec("P")
R = TypeVar("R")

EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    RepositoryError,
    MirrorError,
    WrongConfigError,
    CorruptIndexError,
    InvalidNameError,
    InvalidVersionError,
    RegistryError,
    ArtifactNotFoundError,
    ViewArgumentError,
)


class CommandError(click.ClickException):
    """Printed as one line on stderr with exit code 1."""

    def show(self, file: object = None) -> None:
        click.echo(f"gitstage: error: {self.format_message()}", err=True)


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the expected failures of a command into one-line errors instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except EXPECTED_ERRORS as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CommandError(message) from None

    return wrapper

"""Every command's `--help` shows examples, and each example parses with the real CLI."""

from __future__ import annotations

import re
import shlex

import click
import pytest

from gitstage.cli.main import cli

WITH_EXAMPLES = [
    "show",
    "history",
    "describe",
    "check-ref",
    "stages",
    "latest",
    "which",
    "fetch",
    "check",
    "link",
    "register",
    "assign",
    "promote",
    "unassign",
    "deregister",
    "deprecate",
]


def example_lines(name: str) -> list[str]:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None, name
    text = click.Context(command, info_name=name, parent=click.Context(cli)).get_help()
    _, _, after = text.partition("Examples")
    lines = [line.strip() for line in after.splitlines()]
    # A comment after the command: `  # ...` or `  (...)`.
    return [re.split(r"\s{2,}[#(]", line)[0] for line in lines if line.startswith("gitstage ")]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_help_has_examples_that_parse(name: str) -> None:
    lines = example_lines(name)
    assert lines, f"`gitstage {name} --help` shows no example"
    for line in lines:
        if line.endswith("\\"):
            continue  # a continued example: its first line only
        argv = shlex.split(line)[1:]
        command = cli.get_command(click.Context(cli), argv[0])
        assert command is not None
        command.make_context(argv[0], argv[1:], parent=click.Context(cli))  # raises on misuse

"""Every command's `--help` shows examples, and each example parses with the real CLI."""

from __future__ import annotations

import re
import shlex

import click
import pytest

from gitstage.cli.main import cli

WITH_EXAMPLES = sorted(cli.list_commands(click.Context(cli)))  # every command


def example_lines(name: str) -> list[str]:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None, name
    text = click.Context(command, info_name=name, parent=click.Context(cli)).get_help()
    _, _, after = text.partition("Examples")
    lines = [line.strip() for line in after.splitlines()]
    # A comment after the command (`  # ...`, `  (...)`) or a pipe into another program.
    return [
        re.split(r"\s{2,}[#(]|\s\|\s", line)[0] for line in lines if line.startswith("gitstage ")
    ]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_help_has_examples_that_parse(name: str) -> None:
    lines = example_lines(name)
    assert lines, f"`gitstage {name} --help` shows no example"
    for line in lines:
        if line.endswith("\\"):
            continue  # a continued example: its first line only
        parse(shlex.split(line)[1:])


def parse(argv: list[str]) -> None:
    """Resolve argv through the groups, then parse the command's options (raises on misuse)."""
    parent = click.Context(cli)
    command: click.Command = cli
    while isinstance(command, click.Group) and argv and not argv[0].startswith("-"):
        found = command.get_command(parent, argv[0])
        assert found is not None, argv[0]
        parent = click.Context(found, info_name=argv[0], parent=parent)
        command, argv = found, argv[1:]
    if not isinstance(command, click.Group):
        command.make_context(command.name, argv, parent=parent.parent)

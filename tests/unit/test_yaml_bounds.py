"""YAML from a repository is bounded: an alias bomb or a huge file is refused in one line,
quickly, before it is built in memory; ordinary anchors and aliases still read."""

from __future__ import annotations

import time
from pathlib import PurePosixPath

import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli
from gitstage.domain.fetch.errors import BadInputError
from gitstage.domain.policy.rules import PolicyFileError, parse_policy
from gitstage.domain.registry.yaml12 import YamlError, load_yaml
from gitstage.domain.yaml_bounds import MAX_BYTES, YamlBoundsError, safe_load_bounded
from tests.support.scratch import ScratchRepo


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: each level lists the previous one nine times (9**levels nodes)."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.fault
def test_an_alias_bomb_is_refused_by_both_loaders_in_a_moment() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 2048
    started = time.monotonic()
    with pytest.raises(YamlError, match="expands to more than"):
        load_yaml(bomb)
    with pytest.raises(YamlBoundsError, match="expands to more than"):
        safe_load_bounded(bomb, "artifacts.yaml")
    with pytest.raises(PolicyFileError, match="expands to more than"):
        parse_policy(bomb)
    assert time.monotonic() - started < 5


@pytest.mark.fault
def test_a_document_over_the_size_limit_is_refused() -> None:
    huge = "a: " + "x" * MAX_BYTES + "\n"
    with pytest.raises(YamlError, match="over the limit"):
        load_yaml(huge)
    with pytest.raises(YamlBoundsError, match="over the limit"):
        safe_load_bounded(huge, "dvc.yaml")


def test_ordinary_anchors_and_aliases_still_read() -> None:
    text = "base: &base {type: model, labels: [a, b]}\nchurn: *base\nfraud: *base\n"
    assert load_yaml(text)["fraud"] == {"type": "model", "labels": ["a", "b"]}
    assert safe_load_bounded(text, "x")["churn"]["labels"] == ["a", "b"]


@pytest.mark.fault
def test_show_on_a_registry_with_an_alias_bomb_is_one_line(scratch: ScratchRepo) -> None:
    scratch.commit({"artifacts.yaml": alias_bomb()})
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["show", "-r", str(scratch.path)])
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("gitstage: error: ")
    assert "expands to more than" in line
    assert time.monotonic() - started < 10


@pytest.mark.fault
def test_dvc_files_are_bounded_too() -> None:
    from gitstage.domain.fetch.dvc_files import _load_yaml

    with pytest.raises(BadInputError, match="expands to more than"):
        _load_yaml(alias_bomb().encode(), PurePosixPath("model.bin.dvc"))

"""YAML from a repository is bounded: an alias bomb or a huge file is refused in one line,
quickly, before it is built in memory; ordinary anchors and aliases still read."""

from __future__ import annotations

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
def test_an_alias_bomb_is_refused_by_both_loaders_before_it_is_built() -> None:
    """The refusal comes from the event walk, which stops at MAX_NODES: nothing is built."""
    bomb = alias_bomb()
    assert len(bomb) < 2048
    with pytest.raises(YamlError, match="expands to more than"):
        load_yaml(bomb)
    with pytest.raises(YamlBoundsError, match="expands to more than"):
        safe_load_bounded(bomb, "artifacts.yaml")
    with pytest.raises(PolicyFileError, match="expands to more than"):
        parse_policy(bomb)


@pytest.mark.fault
def test_deep_nesting_is_refused_before_the_recursive_loaders_run() -> None:
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(YamlError, match="nests deeper than 100 levels"):
        load_yaml(deep)
    with pytest.raises(YamlBoundsError, match="nests deeper than 100 levels"):
        safe_load_bounded(deep, "dvc.yaml")
    assert load_yaml("a: " + "[" * 99 + "]" * 99 + "\n")["a"]  # the mapping and 99 lists: 100


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
@pytest.mark.parametrize("command", [["show"], ["describe", "a0"]], ids=" ".join)
def test_show_and_describe_on_a_registry_with_an_alias_bomb_are_one_line(
    scratch: ScratchRepo, command: list[str]
) -> None:
    scratch.commit({"artifacts.yaml": alias_bomb()})
    result = CliRunner().invoke(cli, [*command, "-r", str(scratch.path)])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("gitstage: error: ")
    assert "expands to more than" in line


@pytest.mark.fault
def test_link_refuses_an_alias_bomb_in_the_work_tree(scratch: ScratchRepo) -> None:
    from gitstage.adapters.git.index_file import write_link
    from gitstage.domain.registry.index import CorruptIndexError

    (scratch.path / "artifacts.yaml").write_text(alias_bomb())
    with pytest.raises(CorruptIndexError, match="expands to more than"):
        write_link(scratch.path, "m", {"repo": "https://git.example/r.git", "rev": "v1"})


@pytest.mark.fault
def test_dvc_files_are_bounded_too() -> None:
    from gitstage.domain.fetch.dvc_files import _load_yaml

    with pytest.raises(BadInputError, match="expands to more than"):
        _load_yaml(alias_bomb().encode(), PurePosixPath("model.bin.dvc"))

"""`gitstage link` and `gitstage describe` on hostile or mistaken input: one line, a non-zero
exit, no traceback, and a refused link leaves artifacts.yaml byte-identical (or absent).

The linked repository is a local one (`--source-repo PATH`): git reads it, no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from gitstage.domain.fetch.links import ArtifactLink, link_of
from gitstage.domain.registry.index import parse_index
from tests.support.console import OPERATOR
from tests.support.scratch import ScratchRepo, When

INDEX = "churn: {type: model, path: models/churn.pkl}\n"
TAG = "churn@v0.0.1"
ONLY_REGULAR = "link edits only a regular file"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The linked repository: churn at models/churn.pkl, registered as churn@v0.0.1."""
    return _registry(tmp_path / "source")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """This registry's work tree, empty."""
    return ScratchRepo(tmp_path / "work").path


def _registry(path: Path) -> Path:
    repo = ScratchRepo(path)
    commit = repo.commit({"models/churn.pkl": "bytes", "artifacts.yaml": INDEX})
    repo.tag(TAG, commit, When(10))
    return path


def link(work: Path, source: Path | str, *args: str, rev: str = TAG) -> Result:
    command = ["link", *args[:1], "--source-repo", str(source), "--rev", rev, *args[1:]]
    return CliRunner().invoke(cli, [*command, "-r", str(work)])


def describe(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["describe", *args, "-r", str(repo)])


def one_line_error(result: Result, exit_code: int = 1) -> str:
    """The single `gitstage: error: ...` line of a refused command (not a traceback)."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == exit_code, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("gitstage: error: ")
    return line


def refused_unchanged(work: Path, text: str, *args: str, source: Path, exit_code: int = 1) -> str:
    """Link NAME with artifacts.yaml holding `text`: refused, the file byte-identical."""
    index = work / "artifacts.yaml"
    index.write_text(text)
    line = one_line_error(link(work, source, *args), exit_code)
    assert index.read_text() == text
    return line


# 1. describe: custom data JSON has no form for


@pytest.mark.parametrize(
    ("custom", "problem"),
    [
        ("{a: !!binary AAAA}", r"custom.a holds a bytes value (b'\x00\x00\x00')"),
        ("{k: [1, !!set {a}]}", "custom.k[1] holds a set value ({'a'})"),
    ],
)
def test_describe_names_the_value_json_cannot_print(
    tmp_path: Path, custom: str, problem: str
) -> None:
    repo = ScratchRepo(tmp_path / "registry")
    repo.commit({"artifacts.yaml": f"churn: {{path: x, custom: {custom}}}\n"})
    line = one_line_error(describe(repo.path, "churn"))
    assert line == f"gitstage: error: artifact 'churn': {problem}, which JSON cannot print"
    assert describe(repo.path, "churn", "--path").stdout == "x\n"  # one field still prints


# 2. link: an entry whose custom cannot hold the link


@pytest.mark.parametrize(
    ("custom", "problem"),
    [
        ("5", "custom is int '5'"),
        ("{gitstage: 7}", "custom.gitstage is int '7'"),
        ("[1]", "custom is a list"),
    ],
)
def test_link_refuses_a_custom_that_is_not_a_mapping(
    work: Path, source: Path, custom: str, problem: str
) -> None:
    text = f"x:\n  custom: {custom}\n"
    line = refused_unchanged(work, text, "x", "--path", "models/churn.pkl", source=source)
    assert f"artifact 'x': {problem}, not a mapping" in line


# 3, 4, 6. link: artifacts.yaml that is not a regular file


def test_link_refuses_a_directory(work: Path, source: Path) -> None:
    (work / "artifacts.yaml").mkdir()
    line = one_line_error(link(work, source, "x", "--path", "models/churn.pkl"))
    index = work / "artifacts.yaml"
    assert line == f"gitstage: error: {index} is a directory, not a regular file: {ONLY_REGULAR}"
    assert (work / "artifacts.yaml").is_dir()


def test_link_refuses_a_fifo_without_blocking(work: Path, source: Path) -> None:
    fifo = work / "artifacts.yaml"
    os.mkfifo(fifo)
    args = ["link", "x", "--source-repo", str(source), "--rev", TAG, "--path", "a"]
    done = subprocess.run(
        [sys.executable, "-m", "gitstage", *args, "-r", str(work)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(OPERATOR)},
        timeout=60,  # the bug: open() of a FIFO blocks until a writer comes, forever
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"gitstage: error: {fifo} is a FIFO, not a regular file: {ONLY_REGULAR}\n"
    assert fifo.is_fifo()


@pytest.mark.parametrize("dangling", [False, True])
def test_link_refuses_a_symlinked_index(
    work: Path, source: Path, tmp_path: Path, dangling: bool
) -> None:
    outside = tmp_path / "outside.yaml"
    if not dangling:
        outside.write_text("other: {path: z}\n")
    (work / "artifacts.yaml").symlink_to(outside)
    line = one_line_error(link(work, source, "x", "--path", "models/churn.pkl"))
    assert "artifacts.yaml is a symbolic link, not a regular file" in line
    assert (work / "artifacts.yaml").is_symlink()
    assert os.readlink(work / "artifacts.yaml") == str(outside)
    assert outside.exists() is not dangling
    if not dangling:
        assert outside.read_text() == "other: {path: z}\n"


# 5. link: entries that share nodes through YAML anchors


@pytest.mark.parametrize(
    ("text", "name", "shared"),
    [
        ("churn: &a {path: a}\nfoo: *a\n", "foo", "'churn'"),
        ("churn: &a {path: a}\nfoo: *a\n", "churn", "'foo'"),
        ("b: &b {path: a, custom: {gitstage: {}}}\nfoo:\n  <<: *b\n  type: m\n", "foo", "'b'"),
        ("b: &b {path: a, custom: {k: 1}}\nc:\n  <<: *b\nfoo:\n  <<: *b\n", "foo", "'b', 'c'"),
    ],
)
def test_link_refuses_an_entry_shared_through_anchors(
    work: Path, source: Path, text: str, name: str, shared: str
) -> None:
    line = refused_unchanged(work, text, name, "--path", "models/churn.pkl", source=source)
    assert f"artifact {name!r} shares YAML anchors, aliases or merge keys with {shared}" in line


def test_link_through_a_merge_key_keeps_the_merged_entry(work: Path, source: Path) -> None:
    index = work / "artifacts.yaml"
    index.write_text("b: &b {path: a}\nfoo:\n  <<: *b\n  type: m\n")
    done = link(work, source, "foo", "--path", "models/churn.pkl")
    assert done.exit_code == 0, done.stderr
    assert index.read_text().startswith("b: &b {path: a}\nfoo:\n  <<: *b\n  type: m\n  custom:\n")


# 7. link: the rules of `check --links`, at link time


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../../etc/passwd", "--path '../../etc/passwd' escapes with '..'"),
        ("/etc/passwd", "--path '/etc/passwd' is absolute"),
        ("", "empty or invalid --path ''"),
    ],
)
def test_link_refuses_an_unsafe_path(work: Path, source: Path, path: str, problem: str) -> None:
    line = one_line_error(link(work, source, "x", "--path", path), 2)
    assert line == f"gitstage: error: {problem}"
    assert not (work / "artifacts.yaml").exists()


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (["--artifact", "nonexist"], f"artifact 'nonexist' is not registered at rev {TAG}"),
        (["--path", "models/nothere.pkl"], "models/nothere.pkl does not exist"),
    ],
)
def test_link_refuses_a_target_missing_at_the_rev(
    work: Path, source: Path, target: list[str], problem: str
) -> None:
    line = refused_unchanged(work, INDEX, "x", *target, source=source)
    assert line.startswith(f"gitstage: error: link of x: {problem}")


def test_a_link_accepted_passes_check_links(work: Path, source: Path) -> None:
    assert link(work, source, "x", "--artifact", "churn").exit_code == 0
    assert link(work, source, "y", "--path", "models/churn.pkl").exit_code == 0
    ScratchRepo(work).commit({"artifacts.yaml": (work / "artifacts.yaml").read_text()})
    checked = CliRunner().invoke(cli, ["check", "--links", "-r", str(work)])
    assert (checked.exit_code, checked.stdout) == (0, "")
    assert "0 problems" in checked.stderr
    assert "2 links resolved" in checked.stderr


# 8. link: what pydantic refused, in one line that says it


@pytest.mark.parametrize(
    ("repo", "rev", "problem"),
    [
        ("", TAG, "--source-repo '': 'repo' must be a repository URL or path"),
        (None, "", "--rev '': 'rev' must be a commit SHA or a tag/branch name"),
        (None, "-x", "--rev '-x': 'rev' must be a commit SHA or a tag/branch name"),
    ],
)
def test_link_says_which_flag_is_invalid(
    work: Path, source: Path, repo: str | None, rev: str, problem: str
) -> None:
    done = link(work, source if repo is None else repo, "x", "--path", "a", rev=rev)
    assert one_line_error(done, 2) == f"gitstage: error: {problem}"


def test_link_accepts_a_local_repository_path_with_a_space(work: Path, tmp_path: Path) -> None:
    spaced = _registry(tmp_path / "sp ace")
    done = link(work, spaced, "x", "--path", "models/churn.pkl")
    assert done.exit_code == 0, done.stderr
    entry = parse_index((work / "artifacts.yaml").read_text(), "test")["x"]
    assert link_of("x", entry) == ArtifactLink(repo=str(spaced), rev=TAG, path="models/churn.pkl")


@pytest.mark.parametrize("repo", ["host:team/sp ace.git", "https://h/sp ace", "/a\nb", " /a"])
def test_a_blank_is_still_refused_outside_a_local_path(repo: str) -> None:
    with pytest.raises(ValueError, match="'repo' must be a repository URL or path"):
        ArtifactLink(repo=repo, rev=TAG)


# 9. describe: a version that does not exist


def test_describe_says_the_version_does_not_exist(source: Path) -> None:
    line = one_line_error(describe(source, "churn@v9.9.9"))
    assert line == "gitstage: error: version 'v9.9.9' of 'churn' does not exist"
    assert one_line_error(describe(source, "churn#prod")) == (
        "gitstage: error: no version of 'churn' is in stage 'prod'"
    )
    assert '"path": "models/churn.pkl"' in describe(source, TAG).stdout
    repo = ScratchRepo(source)
    repo.tag("churn@deprecated", str(repo.repo.head.target), When(20))
    assert one_line_error(describe(source, "churn@latest")) == (
        "gitstage: error: 'churn' has no version (none registered, or it is deprecated)"
    )

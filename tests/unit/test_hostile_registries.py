"""Registries that cannot be read completely: each read command ends in one line and a non-zero
exit, never a traceback and never a silent older answer, and `check` refuses each of them too.

Each registry is built with real git (loose refs, `pack-refs`, `hash-object --literally` for the
objects git itself would refuse to write). Unreadable files are self-referencing symlinks: they
fail with ELOOP for any user, root included.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli
from tests.support.console import run_gitstage
from tests.support.git import run_git

READS = (["show"], ["show", "churn#prod"], ["show", "--json"], ["history"])
INDEX = "churn:\n  type: model\n  path: model.bin\n"


def registry(path: Path) -> Path:
    """churn@v1.0.0 and v1.1.0; prod moved from v1.0.0 (churn#prod#1) to v1.1.0 (#2)."""
    run_git(path.parent, "init", "-q", "-b", "main", path.name)
    (path / "artifacts.yaml").write_text(INDEX)
    (path / "model.bin").write_text("one")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-qm", "one", date=1_700_000_000)
    run_git(path, "tag", "-a", "churn@v1.0.0", "-m", "r1", date=1_700_000_010)
    (path / "model.bin").write_text("two")
    run_git(path, "commit", "-qam", "two", date=1_700_000_020)
    run_git(path, "tag", "-a", "churn@v1.1.0", "-m", "r2", date=1_700_000_030)
    run_git(path, "tag", "-a", "churn#prod#1", "-m", "p1", "HEAD~1", date=1_700_000_040)
    run_git(path, "tag", "-a", "churn#prod#2", "-m", "p2", "HEAD", date=1_700_000_050)
    return path


def unreadable(path: Path) -> None:
    """Replace `path` by a symlink to itself: opening it fails with ELOOP, even as root."""
    if path.is_dir():
        path.rename(path.with_name(path.name + ".moved"))
    else:
        path.unlink()
    path.symlink_to(path.name)


def object_path(repo: Path, oid: str) -> Path:
    return repo / ".git" / "objects" / oid[:2] / oid[2:]


def tag_object(repo: Path, name: str, tagger_date: str) -> None:
    """An annotated tag of HEAD whose tagger line says `tagger_date` (`git tag` would refuse)."""
    head = run_git(repo, "rev-parse", "HEAD")
    text = f"object {head}\ntype commit\ntag {name}\ntagger t <t@e> {tagger_date}\n\n{name}\n"
    oid = subprocess.run(
        ["git", "-C", str(repo), "hash-object", "-t", "tag", "-w", "--stdin", "--literally"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    run_git(repo, "update-ref", f"refs/tags/{name}", oid)


def corrupt_packed_refs(repo: Path) -> None:
    run_git(repo, "pack-refs", "--all")
    with (repo / ".git" / "packed-refs").open("a") as handle:
        handle.write("this line is not a ref\n")


def truncated_packed_tag(repo: Path) -> None:
    """A tag line cut short: read line by line, the newest prod tag would simply vanish."""
    run_git(repo, "pack-refs", "--all")
    packed = repo / ".git" / "packed-refs"
    lines = packed.read_text().splitlines()
    lines = [line[:30] if line.endswith("churn#prod#2") else line for line in lines]
    packed.write_text("\n".join(lines) + "\n")


def head_to_missing_commit(repo: Path) -> None:
    (repo / ".git" / "refs" / "heads" / "main").write_text("1234567890" * 4 + "\n")


def branch_unreadable(repo: Path) -> None:
    """HEAD names refs/heads/main, which cannot be read: not an unborn branch."""
    unreadable(repo / ".git" / "refs" / "heads" / "main")


def non_utf8_config(repo: Path) -> None:
    (repo / ".gto").write_bytes(b"stages: [dev, prod]\n# \xff\xfe\n")


def stage_tag_object_missing(repo: Path) -> None:
    object_path(repo, run_git(repo, "rev-parse", "churn#prod#2")).unlink()


def stage_tag_unreadable(repo: Path) -> None:
    unreadable(repo / ".git" / "refs" / "tags" / "churn#prod#2")


def tags_directory_unreadable(repo: Path) -> None:
    unreadable(repo / ".git" / "refs" / "tags")


def tagger_date_past_year_9999(repo: Path) -> None:
    tag_object(repo, "churn#dev#1", "99999999999999 +0000")


def tagger_date_before_year_1(repo: Path) -> None:
    tag_object(repo, "churn#dev#1", "-62135596801 +0000")


def two_versions_on_one_commit(repo: Path) -> None:
    run_git(repo, "tag", "-a", "churn@v1.2.0", "-m", "again", date=1_700_000_060)


def deeply_nested_index(repo: Path) -> None:
    (repo / "artifacts.yaml").write_text(INDEX + "deep: " + "[" * 5000 + "]" * 5000 + "\n")
    run_git(repo, "commit", "-qam", "deep", date=1_700_000_070)


def oversized_index(repo: Path) -> None:
    """A 20 MB artifacts.yaml: refused from its blob's size, before it is read or parsed."""
    padding = "# " + "x" * 1000 + "\n"
    (repo / "artifacts.yaml").write_text(INDEX + padding * 20_000)
    run_git(repo, "commit", "-qam", "big", date=1_700_000_070)


# damage -> what the one-line error says
HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt packed-refs": (corrupt_packed_refs, "packed-refs: a line is not a ref"),
    "truncated packed tag": (truncated_packed_tag, "packed-refs: a line is not a ref"),
    "HEAD to a missing commit": (head_to_missing_commit, "HEAD points to 1234567890123456789"),
    "HEAD's branch unreadable": (branch_unreadable, "Too many levels of symbolic links"),
    "non-UTF-8 .gto": (non_utf8_config, ".gto': not UTF-8 text"),
    "stage tag object missing": (stage_tag_object_missing, "tag churn#prod#2 points to object"),
    "stage tag unreadable": (stage_tag_unreadable, "cannot read"),
    "refs/tags unreadable": (tags_directory_unreadable, "cannot read"),
    "tagger date past 9999": (tagger_date_past_year_9999, "has a date out of range"),
    "tagger date before year 1": (tagger_date_before_year_1, "has a date out of range"),
    "two versions on a commit": (two_versions_on_one_commit, "multiple versions of artifact"),
    "deeply nested artifacts.yaml": (deeply_nested_index, "nests deeper than 100 levels"),
    "20 MB artifacts.yaml": (oversized_index, "bytes, over the limit of 2097152"),
}


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    damage, message = HOSTILE[request.param]
    repo = registry(tmp_path / "registry")
    damage(repo)
    return repo, message


def assert_one_line_error(result: object, message: str) -> None:
    exit_code = result.exit_code  # type: ignore[attr-defined]
    exception = result.exception  # type: ignore[attr-defined]
    assert isinstance(exception, SystemExit), exception  # not an uncaught exception
    assert exit_code != 0
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert lines[0].startswith("gitstage: error: ")
    assert message in lines[0]


@pytest.mark.fault
@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_every_read_command_fails_in_one_line(
    hostile: tuple[Path, str], command: list[str]
) -> None:
    repo, message = hostile
    result = CliRunner().invoke(cli, [*command, "-r", str(repo)])
    assert_one_line_error(result, message)
    assert result.stdout == ""  # no older holder, no empty registry


@pytest.mark.fault
def test_check_refuses_what_show_refuses(hostile: tuple[Path, str]) -> None:
    repo, message = hostile
    result = CliRunner().invoke(cli, ["check", "-r", str(repo)])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert message in result.stdout
    assert "0 problems" not in result.stderr


@pytest.mark.fault
def test_the_console_script_prints_no_traceback(hostile: tuple[Path, str]) -> None:
    """`show --json` as installed: the fast path declines, click reports the error."""
    repo, message = hostile
    proc = run_gitstage("show", "--json", "-r", str(repo))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert proc.stdout == ""


@pytest.mark.fault
@pytest.mark.parametrize(
    "damage", [head_to_missing_commit, non_utf8_config, deeply_nested_index, oversized_index]
)
def test_describe_fails_in_one_line(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    repo = registry(tmp_path / "registry")
    damage(repo)
    result = CliRunner().invoke(cli, ["describe", "churn", "-r", str(repo)])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code != 0
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("gitstage: error: ")


def test_the_undamaged_registry_reads(tmp_path: Path) -> None:
    """The baseline each damage breaks: prod holds v1.1.0 and check finds nothing."""
    repo = registry(tmp_path / "registry")
    result = CliRunner().invoke(cli, ["show", "churn#prod", "--ref", "-r", str(repo)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "churn@v1.1.0"
    run_git(repo, "pack-refs", "--all")
    result = CliRunner().invoke(cli, ["check", "-r", str(repo)])
    assert result.exit_code == 0, result.stdout

"""Failures no command expected are one line, not a traceback or click's usage block: a ref
lock left by a crashed git, a path that cannot be written, a kubeconfig that is not YAML, an
unknown command or option at any level, a repository git cannot read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2
import pytest

from tests.support.console import run_gitstage
from tests.support.git import run_git


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("gitstage: error: ")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    pygit2.init_repository(str(path))
    for key, value in (("user.name", "Ann"), ("user.email", "ann@example.com")):
        run_git(path, "config", key, value)
    (path / "model.pkl").write_text("weights\n")
    run_git(path, "add", "model.pkl")
    run_git(path, "commit", "-qm", "train")
    return path


def test_a_stale_ref_lock_says_how_to_recover_and_writes_nothing(repo: Path) -> None:
    lock = repo / ".git" / "refs" / "tags" / "churn@v1.0.0.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()  # what a git killed while writing that ref leaves behind
    message = one_line_error(
        run_gitstage("register", "churn", "--version", "v1.0.0", "--repo", str(repo))
    )
    assert message.startswith(f"failed to lock file '{lock}' for writing")
    assert "if none is running, delete that .lock file" in message
    assert run_git(repo, "tag", "--list") == ""
    lock.unlink()
    created = run_gitstage("register", "churn", "--version", "v1.0.0", "--repo", str(repo))
    assert created.returncode == 0, created.stderr
    assert run_git(repo, "tag", "--list").strip() == "churn@v1.0.0"


def test_a_path_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    taken = tmp_path / "out" / "modelregistries.gitstage.dev.yaml"
    taken.mkdir(parents=True)  # a directory where the CRD file goes
    message = one_line_error(run_gitstage("crds", "-o", str(taken.parent)))
    assert message == f"Is a directory: {taken}"


def test_a_kubeconfig_that_is_not_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nclusters: [\n")
    for command in (("get", "registries"), ("reconcile", "churn")):
        message = one_line_error(run_gitstage(*command, env={"KUBECONFIG": str(kubeconfig)}))
        assert message.startswith(f"no usable kubeconfig: {kubeconfig} is not valid YAML: ")
        assert message.endswith("(line 3)")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nonsense"], "No such command 'nonsense'. (see 'gitstage --help')"),
        (["--bogus"], "No such option '--bogus'. (see 'gitstage --help')"),
        (["get", "nonsense"], "No such command 'nonsense'. (see 'gitstage get --help')"),
        (["crds", "--bogus"], "No such option '--bogus'. (see 'gitstage crds --help')"),
        (
            ["get", "registries", "-o", "bogus"],
            "Invalid value for '-o' / '--output': 'bogus' is not one of 'table', 'wide', 'json',"
            " 'yaml'. (see 'gitstage get registries --help')",
        ),
    ],
)
def test_a_usage_error_at_any_level_is_one_line(args: list[str], expected: str) -> None:
    result = run_gitstage(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"gitstage: error: {expected}"]


def test_a_group_without_its_command_still_prints_its_help() -> None:
    result = run_gitstage("get")
    assert "Usage: gitstage get [OPTIONS] COMMAND [ARGS]..." in result.stdout + result.stderr
    assert "gitstage: error" not in result.stderr


def test_a_write_to_a_path_git_cannot_read_says_why_git_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_gitstage("register", "churn", "-r", str(missing))
    assert result.returncode == 1
    progress, error = result.stderr.strip().splitlines()  # a progress line, then the error
    assert progress.startswith(f"Fetching tags and the default branch of {missing}")
    # git's cause, not its advice ("... and the repository exists.").
    cause = f"'{missing}' does not appear to be a git repository"
    assert error == f"gitstage: error: cannot read {missing}: {cause}"

"""`--kind` runs only where kind, a Docker daemon and pytest-kind are all usable; else a reason."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.kind import unusable_reason


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An otherwise empty PATH, for fake `kind` and `docker` commands."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def command(directory: Path, name: str, exit_code: int) -> None:
    script = directory / name
    script.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    script.chmod(0o755)


def test_without_kind_the_reason_names_kind(bin_dir: Path) -> None:
    command(bin_dir, "docker", 0)
    assert unusable_reason() == "--kind needs the `kind` command on PATH"


def test_without_docker_the_reason_names_docker(bin_dir: Path) -> None:
    command(bin_dir, "kind", 0)
    assert unusable_reason() == "--kind needs the `docker` command on PATH"


def test_a_docker_cli_without_a_daemon_is_not_enough(bin_dir: Path) -> None:
    command(bin_dir, "kind", 0)
    command(bin_dir, "docker", 1)
    assert unusable_reason() == "--kind needs a Docker daemon: `docker info` failed"


def test_without_pytest_kind_the_reason_says_how_to_install_it(
    bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command(bin_dir, "kind", 0)
    command(bin_dir, "docker", 0)
    monkeypatch.setitem(sys.modules, "pytest_kind", None)  # makes the import fail
    assert unusable_reason() == "--kind needs pytest-kind (pip install pytest-kind)"


def test_with_everything_usable_there_is_no_reason(
    bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command(bin_dir, "kind", 0)
    command(bin_dir, "docker", 0)
    monkeypatch.setitem(sys.modules, "pytest_kind", ModuleType("pytest_kind"))
    assert unusable_reason() is None

"""Shared by the unit tests: a scratch repository, and git as the environment has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.git import run_git
from tests.support.scratch import ScratchRepo


def git(path: Path, *args: str) -> str:
    """git in `path` with this process's environment and identity (no test identity)."""
    return run_git(path, *args, person=None)


@pytest.fixture
def scratch(tmp_path: Path) -> ScratchRepo:
    """An empty non-bare repository (branch main) at tmp_path/registry."""
    return ScratchRepo(tmp_path / "registry")

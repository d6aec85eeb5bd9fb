"""A scratch registry with a tagger identity, and the gitstage CLI run in-process against it.

Every command gets an explicit, increasing `--date`, so event order never depends on the clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli
from tests.support.scratch import BASE_TIME, ScratchRepo, When

WRITE_COMMANDS = {"register", "assign", "unassign", "deregister", "deprecate"}


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Registry:
    scratch: ScratchRepo
    clock: Iterator[int] = field(default_factory=lambda: itertools.count(100, 10))

    @property
    def path(self) -> Path:
        return self.scratch.path

    @property
    def repo(self) -> pygit2.Repository:
        return self.scratch.repo

    def commit(self, content: str) -> str:
        return self.scratch.commit({"model.txt": content}, When(next(self.clock)))

    def gs(self, *args: str) -> Result:
        """Run `gitstage ARGS -r REPO`, dated at the next tick for write commands."""
        argv = [*args, "-r", str(self.path)]
        if args[0] in WRITE_COMMANDS and "--date" not in args:
            argv += ["--date", f"@{BASE_TIME + next(self.clock)} +0000"]
        result = CliRunner().invoke(cli, argv)
        return Result(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str) -> str:
        result = self.gs(*args)
        assert result.code == 0, result.err
        return result.out

    def refused(self, *args: str) -> str:
        """The one-line error of a refused command (and no tag was created or deleted)."""
        before = self.tags()
        result = self.gs(*args)
        assert result.code == 1, result.out
        assert self.tags() == before
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, result.err
        return lines[0].removeprefix("gitstage: error: ")

    def tags(self) -> set[str]:
        return {r[len("refs/tags/") :] for r in self.repo.listall_references() if "tags/" in r}

    def tag(self, name: str) -> pygit2.Tag:
        obj = self.repo.get(self.repo.references[f"refs/tags/{name}"].target)
        assert isinstance(obj, pygit2.Tag), name
        return obj


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    scratch = ScratchRepo(tmp_path / "registry")
    scratch.repo.config["user.name"] = "Reg Istrar"
    scratch.repo.config["user.email"] = "registrar@example.com"
    found = Registry(scratch)
    found.commit("first")
    return found

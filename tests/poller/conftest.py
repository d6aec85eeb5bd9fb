"""A GTO registry served over smart HTTP on loopback with Basic auth, and a clone to push from."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.dev.git_server import BasicAuth
from tests.support import git
from tests.support.fast_import import Person
from tests.support.git_server import CountingGitServer

USER = "alice"
PASSWORD = "pw-Zq7-unguessable-4711"
BASE = 1_700_000_000


@dataclass
class Clone:
    """A working clone of the served bare repository; its pushes change the remote."""

    bare: Path
    work: Path
    commits: dict[str, str]

    def git(self, *args: str, date: int = BASE) -> str:
        return git_as_ana(self.work, *args, date=date)

    def commit(self, label: str, files: dict[str, str], date: int) -> str:
        for name, text in files.items():
            (self.work / name).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-qm", label, date=date)
        self.commits[label] = self.git("rev-parse", "HEAD")
        return self.commits[label]

    def tag(self, name: str, date: int, target: str = "HEAD") -> None:
        """An annotated tag, as `git tag -a` writes it; GIT_COMMITTER_DATE sets the tagger date."""
        self.git("tag", "-a", name, "-m", name, target, date=date)

    def push(self, *refs: str) -> None:
        self.git("push", "-q", str(self.bare), *refs)

    def delete_remote_tag(self, name: str) -> None:
        self.git("push", "-q", str(self.bare), f":refs/tags/{name}")


@dataclass
class Remote:
    server: CountingGitServer
    clone: Clone

    @property
    def url(self) -> str:
        return self.server.url(self.clone.bare.name)


ANA = Person("Ana Data", "ana@example.com")


def git_as_ana(cwd: Path, *args: str, date: int = BASE) -> str:
    """git as Ana at `date` (author and committer), with no user or system setting."""
    isolated = {"HOME": str(cwd), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    return git.run_git(cwd, *args, person=ANA, date=date, author_date=True, base_env=isolated)


def weights(seed: str, size: int = 64 * 1024) -> str:
    """Incompressible-ish model bytes: a blobless sync must never download them."""
    text, block = "", seed.encode()
    while len(text) < size:
        block = hashlib.sha256(block).digest()
        text += block.hex()
    return text[:size]


def make_registry(tmp: Path, *, allow_filter: bool = True) -> Clone:
    """churn v1 (in prod) and v2, on two commits, pushed to `tmp/srv/registry.git`."""
    root = tmp / "srv"
    bare = root / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    if allow_filter:
        config = ["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"]
        subprocess.run(config, check=True)
    work = tmp / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    clone = Clone(bare, work, {})
    index = "churn:\n  type: model\n  path: models/churn.pkl\n"
    clone.commit("one", {"artifacts.yaml": index, "weights.bin": weights("one")}, BASE + 1)
    clone.tag("churn@v1.0.0", BASE + 10)
    clone.tag("churn#prod#1", BASE + 11)
    clone.commit("two", {"weights.bin": weights("two")}, BASE + 20)
    clone.tag("churn@v2.0.0", BASE + 30)
    clone.push("main", "--tags")
    return clone


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    clone = make_registry(tmp_path)
    server = CountingGitServer(clone.bare.parent, auth=BasicAuth(USER, PASSWORD))
    server.start()
    try:
        yield Remote(server, clone)
    finally:
        server.stop()


@pytest.fixture
def credentials() -> GitCredentials:
    return GitCredentials(USER, PASSWORD)

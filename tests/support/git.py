"""The tests' one way to run the git CLI: `run_git(path, *args)`, stdout without its last newline.

Who writes (author and committer) and when are explicit, as each test's history needs them:
`person` (None: whatever the environment says), `date` in epoch seconds (committer and tagger
date; with `author_date`, the author date too) and `base_env` (the environment the variables are
added to: this process's by default, or a minimal one so that no user or system setting leaks
in). Repositories written in-process are built with tests/support/scratch.py instead, large
histories with tests/support/fast_import.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.fast_import import Person

DATA_SCIENTIST = Person("ds", "ds@example.com")


def git_env(
    person: Person | None = DATA_SCIENTIST,
    *,
    date: int | None = None,
    author_date: bool = False,
    base_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = dict(os.environ if base_env is None else base_env)
    if person is not None:
        env.update(
            GIT_AUTHOR_NAME=person.name,
            GIT_AUTHOR_EMAIL=person.email,
            GIT_COMMITTER_NAME=person.name,
            GIT_COMMITTER_EMAIL=person.email,
        )
    if date is not None:
        if author_date:
            env["GIT_AUTHOR_DATE"] = f"{date} +0000"
        env["GIT_COMMITTER_DATE"] = f"{date} +0000"
    return env


def run_git(
    path: Path,
    *args: str,
    person: Person | None = DATA_SCIENTIST,
    date: int | None = None,
    author_date: bool = False,
    base_env: Mapping[str, str] | None = None,
) -> str:
    """git in `path` (as the data scientist `ds` unless told); `date` (epoch seconds) is the
    committer and tagger time."""
    env = git_env(person, date=date, author_date=author_date, base_env=base_env)
    result = subprocess.run(
        ["git", "-C", str(path), *args], env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def init_served_bare(path: Path) -> Path:
    """A bare repository on branch main that smart HTTP serves with filters and pushes."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "config", "uploadpack.allowFilter", "true"], check=True)
    subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
    return path


@dataclass
class WorkingClone:
    """A working clone of a served repository, as a data scientist's: commits and annotated (or
    signed) tags, each pushed to origin at once."""

    path: Path

    def git(self, *args: str, date: int | None = None) -> str:
        return run_git(self.path, *args, date=date)

    def commit_and_push(self, files: dict[str, str], message: str) -> str:
        """Write `files` (path -> text), commit them on main, push; the new commit's id."""
        for rel, content in files.items():
            (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.path / rel).write_text(content)
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")

    def tag_and_push(self, name: str, rev: str, *, date: int, signed: bool = False) -> None:
        """`git tag -a` (or `-s`) tagged at `date`, then pushed."""
        self.git("tag", "-s" if signed else "-a", name, "-m", name, rev, date=date)
        self.git("push", "-q", "origin", f"refs/tags/{name}")

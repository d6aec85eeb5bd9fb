"""Scratch git repositories for tests: commits and tags with exact tagger times, in-process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pygit2

BASE_TIME = 1_700_000_000


@dataclass(frozen=True)
class When:
    """A tagger or committer time: seconds after BASE_TIME, with a UTC offset in minutes."""

    seconds: int
    offset_minutes: int = 0


class ScratchRepo:
    """A non-bare repository whose history and tags a test writes explicitly."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = pygit2.init_repository(str(path), bare=False, initial_head="main")

    def signature(self, when: When, name: str = "Tester") -> pygit2.Signature:
        return pygit2.Signature(
            name, "tester@example.com", BASE_TIME + when.seconds, when.offset_minutes
        )

    def commit(self, files: dict[str, str] | None = None, when: When = When(0)) -> str:
        """Commit `files` (path -> content) on top of HEAD and return the commit SHA."""
        index = self.repo.index
        for rel, content in (files or {}).items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            index.add(rel)
        index.write()
        tree = index.write_tree()
        parents = [] if self.repo.head_is_unborn else [self.repo.head.target]
        signature = self.signature(when)
        oid = self.repo.create_commit("HEAD", signature, signature, "commit\n", tree, parents)
        return str(oid)

    def tag(self, name: str, target: str, when: When, message: str = "") -> str:
        """An annotated tag pointing at `target` (any object), tagged at `when`."""
        obj = self.repo.get(target)
        assert obj is not None, target
        oid = self.repo.create_tag(
            name, obj.id, obj.type, self.signature(when), message or f"tag {name}"
        )
        return str(oid)

    def lightweight(self, name: str, target: str) -> None:
        self.repo.references.create(f"refs/tags/{name}", target)

    def delete_tag(self, name: str) -> None:
        self.repo.references.delete(f"refs/tags/{name}")

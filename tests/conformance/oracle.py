"""The real gto as an oracle: its CLI driven through `gto_driver.py`, and its tags re-dated.

gto 1.10.1 stamps tags with the wall clock (dulwich ignores GIT_COMMITTER_DATE for tags), at one
second precision. Instead of sleeping between operations, each tag gto creates is rewritten with
the step's logical time: same name, target, tagger name and email, and message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pygit2

GTO = Path(os.environ.get("GITSTAGE_GTO", str(Path(sys.executable).parent / "gto")))
DRIVER = Path(__file__).with_name("gto_driver.py")
TAGS = "refs/tags/"


@dataclass
class Answer:
    code: int
    out: str
    err: str


class GtoOracle:
    """A gto process answering one CLI call per line."""

    def __init__(self, workdir: Path) -> None:
        python = GTO.parent / "python"
        self._process = subprocess.Popen(
            [str(python), str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=workdir,  # gto reads its global CONFIG from the working directory's .gto
        )
        self.calls = 0

    def run(self, *argv: str) -> Answer:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps({"argv": list(argv)}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, f"gto driver exited ({self._process.poll()})"
        self.calls += 1
        answer = json.loads(line)
        return Answer(answer["code"], answer["out"], answer["err"])

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)

    def __enter__(self) -> GtoOracle:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class TagInfo:
    target: str
    message: str
    tagger: tuple[str, str, int, int] | None


@dataclass
class TagChanges:
    created: dict[str, TagInfo] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)


def tag_refs(path: Path) -> dict[str, str]:
    repo = pygit2.Repository(str(path))
    return {
        ref[len(TAGS) :]: str(repo.references[ref].target)
        for ref in repo.listall_references()
        if ref.startswith(TAGS)
    }


def changes(path: Path, before: dict[str, str]) -> TagChanges:
    after = tag_refs(path)
    repo = pygit2.Repository(str(path))
    created = {}
    for name in sorted(set(after) - set(before)):
        obj = repo.get(after[name])
        assert isinstance(obj, pygit2.Tag), f"{name} is not annotated"
        tagger = obj.tagger
        who = (tagger.name, tagger.email, tagger.time, tagger.offset) if tagger else None
        created[name] = TagInfo(str(obj.target), obj.message.strip(), who)
    return TagChanges(created, set(before) - set(after))


def redate(path: Path, names: list[str], seconds: int) -> None:
    """Rewrite gto's new tags at `seconds` (UTC), keeping everything else about them."""
    repo = pygit2.Repository(str(path))
    for name in names:
        obj = repo.get(repo.references[TAGS + name].target)
        assert isinstance(obj, pygit2.Tag)
        assert obj.tagger is not None
        target = repo.get(obj.target)
        assert target is not None
        who = pygit2.Signature(obj.tagger.name, obj.tagger.email, seconds, 0)
        repo.references.delete(TAGS + name)
        repo.create_tag(name, target.id, target.type, who, obj.message)

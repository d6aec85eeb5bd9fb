"""Write a git history in ONE `git fast-import` stream: commits, annotated and lightweight tags.

One process for any number of tags: the conformance histories (tens of tags, hundreds of repos)
and the benchmark registries (120,000 tags) are both written this way. Objects are named by
fast-import marks; `close()` returns the SHA of every mark.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

BRANCH = "main"


@dataclass(frozen=True)
class Stamp:
    """A git timestamp: whole epoch seconds and the writer's UTC offset (`+0300`, `-0700`)."""

    epoch: int
    tz: str = "+0000"

    def raw(self) -> str:
        return f"{self.epoch} {self.tz}"


@dataclass(frozen=True)
class Person:
    name: str
    email: str

    def line(self, when: Stamp) -> str:
        return f"{self.name} <{self.email}> {when.raw()}"


DEFAULT_PERSON = Person("Registry Bot", "bot@example.com")


@dataclass(frozen=True)
class CommitSpec:
    """A commit on top of the previous one; `files` maps a path to its content (None deletes)."""

    mark: int
    when: Stamp
    message: str = "commit"
    files: Mapping[str, str | None] = field(default_factory=dict)
    person: Person = DEFAULT_PERSON
    author: Person | None = None  # None: the committer
    author_when: Stamp | None = None  # None: the commit time


@dataclass(frozen=True)
class TagSpec:
    """A tag on the object of mark `target` (a commit or an earlier annotated tag).

    `when` None writes a lightweight tag; `mark` names an annotated tag so later tags can
    point at it (tag of a tag).
    """

    name: str
    target: int
    when: Stamp | None
    message: str = "tag"
    person: Person = DEFAULT_PERSON
    mark: int | None = None


def init_repo(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", BRANCH, str(path)], check=True)


def _data(text: str) -> bytes:
    payload = text.encode()
    return b"data %d\n%s\n" % (len(payload), payload)


class FastImport:
    """A running `git fast-import` on `repo`, fed one command at a time."""

    def __init__(self, repo: Path) -> None:
        self._repo = repo
        self._marks_file = repo / ".git" / "fast-import.marks"
        self._proc = subprocess.Popen(
            [
                "git",
                "-C",
                str(repo),
                "fast-import",
                "--quiet",
                "--done",
                f"--export-marks={self._marks_file}",
            ],
            stdin=subprocess.PIPE,
        )
        assert self._proc.stdin is not None
        self._out: IO[bytes] = self._proc.stdin
        self._has_commit = False

    def commit(self, spec: CommitSpec) -> None:
        head = [
            f"commit refs/heads/{BRANCH}",
            f"mark :{spec.mark}",
            f"author {(spec.author or spec.person).line(spec.author_when or spec.when)}",
            f"committer {spec.person.line(spec.when)}",
        ]
        self._out.write(("\n".join(head) + "\n").encode())
        self._out.write(_data(spec.message))
        for path, content in spec.files.items():
            if content is None:
                self._out.write(f"D {path}\n".encode())
            else:
                self._out.write(f"M 100644 inline {path}\n".encode())
                self._out.write(_data(content))
        self._out.write(b"\n")
        self._has_commit = True

    def tag(self, spec: TagSpec) -> None:
        if spec.when is None:
            self._out.write(f"reset refs/tags/{spec.name}\nfrom :{spec.target}\n\n".encode())
            return
        lines = [f"tag {spec.name}"]
        if spec.mark is not None:
            lines.append(f"mark :{spec.mark}")
        lines += [f"from :{spec.target}", f"tagger {spec.person.line(spec.when)}"]
        self._out.write(("\n".join(lines) + "\n").encode())
        self._out.write(_data(spec.message))

    def close(self) -> dict[int, str]:
        """Finish the stream; return mark -> object SHA."""
        self._out.write(b"done\n")
        self._out.close()
        if self._proc.wait() != 0:
            raise RuntimeError(f"git fast-import failed in {self._repo}")
        marks: dict[int, str] = {}
        for line in self._marks_file.read_text().splitlines():
            mark, sha = line.split()
            marks[int(mark[1:])] = sha
        self._marks_file.unlink()
        return marks

    def __enter__(self) -> FastImport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._proc.kill()
            self._proc.wait()


def checkout(repo: Path) -> None:
    """Populate the index and work tree from HEAD, as in a real clone."""
    subprocess.run(["git", "-C", str(repo), "reset", "-q", "--hard"], check=True)

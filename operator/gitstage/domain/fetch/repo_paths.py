"""Paths inside a git tree: validation of user paths and symlink resolution that cannot escape.

A user path (artifacts.yaml `path`, `--path`, a DVC `.dir` relpath) must be relative and free of
`..`. Symlinks met while walking the tree are followed only while they stay inside the tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath

from gitstage.domain.fetch.errors import (
    BadInputError,
    NotFoundError,
    UnsafePathError,
    UnsupportedError,
)

MAX_SYMLINK_HOPS = 40
# Levels of an artifact's files (`a/b/c.txt` is three): deeper ones are refused before anything
# is written, since the tools that install and clean up a tree recurse once per level.
MAX_DEPTH = 128
ROOT = PurePosixPath()


class NodeKind(Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    SUBMODULE = "submodule"


@dataclass(frozen=True)
class Node:
    """A tree entry; `target` is the link text of a symlink, `size` the blob size of a file."""

    kind: NodeKind
    target: str = ""
    size: int = 0
    executable: bool = False


Lookup = Callable[[PurePosixPath], Node | None]


def safe_relative(text: str, what: str = "path") -> PurePosixPath:
    """A relative path without `..`; `.` and empty components are dropped."""
    if not text or "\x00" in text:
        raise BadInputError(f"empty or invalid {what} {text!r}")
    if text.startswith("/"):
        raise UnsafePathError(f"{what} {text!r} is absolute")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{what} {text!r} escapes with '..'")
    if not parts:
        raise BadInputError(f"{what} {text!r} names the repository root")
    return PurePosixPath(*parts)


def check_depth(path: PurePosixPath, what: str) -> None:
    if len(path.parts) > MAX_DEPTH:
        shown = path.as_posix()
        shown = shown if len(shown) <= 80 else f"{shown[:80]}..."
        raise UnsupportedError(f"{what} {shown} nests deeper than {MAX_DEPTH} levels")


def join_within(base: Sequence[str], relative: str, what: str) -> list[str]:
    """Lexically join `relative` (may contain `..`) to `base`, refusing to climb above the root."""
    if relative.startswith("/"):
        raise UnsafePathError(f"{what} is absolute ({relative!r})")
    parts = list(base)
    for part in relative.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePathError(f"{what} leads out of the repository ({relative!r})")
            parts.pop()
        else:
            parts.append(part)
    return parts


def resolve(path: PurePosixPath, lookup: Lookup) -> tuple[PurePosixPath, Node]:
    """Follow symlinks in every component of `path`; the result has none and is a file or dir."""
    pending = list(path.parts)
    done: list[str] = []
    node = Node(NodeKind.DIR)
    hops = 0
    while pending:
        name = pending.pop(0)
        current = PurePosixPath(*done, name)
        found = lookup(current)
        if found is None:
            raise NotFoundError(f"{path} does not exist ({current} is missing)")
        if found.kind is NodeKind.SYMLINK:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise UnsafePathError(f"{path}: too many levels of symlinks")
            what = f"{path}: symlink {current}"
            pending = join_within(done, found.target, what) + pending
            done = []
            continue
        if found.kind is NodeKind.SUBMODULE:
            raise UnsupportedError(f"{path}: {current} is a git submodule")
        if pending and found.kind is not NodeKind.DIR:
            raise NotFoundError(f"{path} does not exist ({current} is not a directory)")
        done.append(name)
        node = found
    if not done:
        raise BadInputError(f"{path} resolves to the repository root")
    return PurePosixPath(*done), node

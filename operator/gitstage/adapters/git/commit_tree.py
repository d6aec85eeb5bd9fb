"""A commit's tree read with pygit2, as the domain's `TreeReader`."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pygit2

from gitstage.adapters.git.blobs import blob_size
from gitstage.domain.fetch.errors import NotFoundError, UnsafePathError
from gitstage.domain.fetch.repo_paths import ROOT, Node, NodeKind

_KINDS = {
    pygit2.enums.FileMode.TREE: NodeKind.DIR,
    pygit2.enums.FileMode.BLOB: NodeKind.FILE,
    pygit2.enums.FileMode.BLOB_EXECUTABLE: NodeKind.FILE,
    pygit2.enums.FileMode.LINK: NodeKind.SYMLINK,
    pygit2.enums.FileMode.COMMIT: NodeKind.SUBMODULE,
}
MAX_SYMLINK_TARGET = 4096  # PATH_MAX: no real link text is longer


class CommitTree:
    def __init__(self, repo: pygit2.Repository, commit: str) -> None:
        self._repo = repo
        obj = repo.get(commit)
        if obj is None:
            raise NotFoundError(f"commit {commit} is not in the fetched objects")
        self.commit = str(obj.peel(pygit2.Commit).id)
        self._root = obj.peel(pygit2.Tree)

    def _entry(self, path: PurePosixPath) -> pygit2.Object | None:
        try:
            return self._root[str(path)]
        except KeyError:
            return None

    def node(self, path: PurePosixPath) -> Node | None:
        if path == ROOT:
            return Node(NodeKind.DIR)
        entry = self._entry(path)
        return None if entry is None else self._node(entry)

    def _node(self, entry: pygit2.Object) -> Node:
        """A file's size comes from its object header: callers bound it before reading."""
        mode = entry.filemode
        kind = _KINDS.get(mode, NodeKind.FILE)
        if kind is NodeKind.SYMLINK:
            return Node(kind, target=os.fsdecode(self._blob(entry, MAX_SYMLINK_TARGET)))
        if kind is NodeKind.FILE:
            size = blob_size(self._repo, entry.id) or 0  # absent: `read` says so, nothing loads
            return Node(kind, size=size, executable=mode == pygit2.enums.FileMode.BLOB_EXECUTABLE)
        return Node(kind)

    def _blob(self, entry: pygit2.Object, limit: int | None = None) -> bytes:
        """The blob's bytes; over `limit` (from its header) an UnsafePathError."""
        if limit is not None:
            size = blob_size(self._repo, entry.id)
            if size is not None and size > limit:
                raise UnsafePathError(f"{entry.name}: a symlink of {size} bytes")
        blob = self._repo.get(entry.id)
        if not isinstance(blob, pygit2.Blob):
            raise NotFoundError(f"{entry.name} is not a readable blob")
        return bytes(blob.data)

    def read(self, path: PurePosixPath) -> bytes:
        """The whole blob: callers check the node's size first (budget, YAML bound)."""
        entry = self._entry(path)
        if entry is None:
            raise NotFoundError(f"{path} does not exist at commit {self.commit[:12]}")
        return self._blob(entry)

    def children(self, path: PurePosixPath) -> list[tuple[str, Node]]:
        tree = self._root if path == ROOT else self._entry(path)
        if not isinstance(tree, pygit2.Tree):
            return []
        return [(str(entry.name), self._node(entry)) for entry in tree]

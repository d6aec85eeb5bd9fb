"""Where an artifact's bytes are at a commit: the artifacts.yaml lookup, then git or DVC.

Everything here reads the commit's tree through `TreeReader`, so it is pure and shared by
`gitstage fetch` (a shallow fetch) and `gitstage check` (a local repository).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

import yaml

from gitstage.domain.fetch.dvc_files import (
    CONFIG_FILE,
    DVC_DIR,
    DVCFILE_SUFFIX,
    LOCK_FILE,
    PROJECT_FILE,
    DvcConfig,
    DvcOut,
    find_out,
    parse_dvc_config,
    parse_dvcfile,
    parse_lockfile,
)
from gitstage.domain.fetch.errors import BadInputError, NotFoundError, UnsupportedError
from gitstage.domain.fetch.links import ArtifactLink, link_of
from gitstage.domain.fetch.repo_paths import (
    ROOT,
    Node,
    NodeKind,
    check_depth,
    join_within,
    resolve,
    safe_relative,
)
from gitstage.domain.registry.files import INDEX_FILE
from gitstage.domain.registry.index import ArtifactAnnotation, CorruptIndexError, parse_index
from gitstage.domain.registry.names import SEPARATOR_IN_NAME
from gitstage.domain.yaml_bounds import YamlBoundsError, check_length, safe_load_bounded

LFS_HEADER = b"version https://git-lfs.github.com/spec/v1\n"
LFS_POINTER_MAX = 1024


class TreeReader(Protocol):
    """One commit's tree. `node` does not follow symlinks; `read` takes a file's path."""

    def node(self, path: PurePosixPath) -> Node | None: ...

    def read(self, path: PurePosixPath) -> bytes: ...

    def children(self, path: PurePosixPath) -> list[tuple[str, Node]]: ...


@dataclass(frozen=True)
class Entry:
    """What the registry says about an artifact at a commit: a path here, or a link elsewhere."""

    path: PurePosixPath | None
    link: ArtifactLink | None


def artifact_entry(tree: TreeReader, artifact: str, where: str) -> Entry:
    """artifacts.yaml first; `dir:name` and plain names also from a dvc.yaml `artifacts:`."""
    directory, _, name = artifact.rpartition(SEPARATOR_IN_NAME)
    if not directory:
        index = read_index(tree, where)
        if artifact in index:
            annotation = index[artifact]
            link = link_of(artifact, annotation)
            if link is not None:
                return Entry(None, link)
            if not annotation.path:
                raise NotFoundError(f"artifact {artifact!r} has no path in {INDEX_FILE} at {where}")
            return Entry(safe_relative(annotation.path, f"path of artifact {artifact!r}"), None)
    path = _dvc_yaml_artifact(tree, directory, name)
    if path is None:
        raise NotFoundError(f"artifact {artifact!r} is not registered at {where}")
    return Entry(path, None)


def read_index(tree: TreeReader, where: str) -> dict[str, ArtifactAnnotation]:
    path = PurePosixPath(INDEX_FILE)
    node = tree.node(path)
    if node is None or node.kind is not NodeKind.FILE:
        return {}
    try:
        return dict(parse_index(read_bounded(tree, path, node), where))
    except CorruptIndexError as error:
        raise BadInputError(str(error)) from None


def read_bounded(tree: TreeReader, path: PurePosixPath, node: Node) -> bytes:
    """A YAML or config file's bytes, refused from its size before it is read into memory."""
    try:
        check_length(node.size, str(path))
    except YamlBoundsError as error:
        raise BadInputError(str(error)) from None
    return tree.read(path)


def _dvc_yaml_artifact(tree: TreeReader, directory: str, name: str) -> PurePosixPath | None:
    base = safe_relative(directory, "artifact directory") if directory else ROOT
    project = base / PROJECT_FILE
    node = tree.node(project)
    if node is None or node.kind is not NodeKind.FILE:
        return None
    try:
        document = safe_load_bounded(read_bounded(tree, project, node), str(project))
    except YamlBoundsError as error:
        raise BadInputError(str(error)) from None
    except yaml.YAMLError:
        raise BadInputError(f"{project} is not valid YAML") from None
    artifacts = document.get("artifacts") if isinstance(document, dict) else None
    entry = artifacts.get(name) if isinstance(artifacts, dict) else None
    path = entry.get("path") if isinstance(entry, dict) else None
    if not isinstance(path, str):
        return None
    safe_relative(path, f"path of artifact {name!r} in {project}")
    return PurePosixPath(*join_within(list(base.parts), path, f"path in {project}"))


@dataclass(frozen=True)
class GitSource:
    path: PurePosixPath
    node: Node


@dataclass(frozen=True)
class DvcSource:
    """A DVC output (or a path inside a directory output) and the DVC config that applies."""

    out: DvcOut
    inner: PurePosixPath
    config: DvcConfig
    config_where: str
    dvc_root: PurePosixPath

    @property
    def is_whole_out(self) -> bool:
        return self.inner == ROOT


Source = GitSource | DvcSource


def locate(tree: TreeReader, path: PurePosixPath) -> Source:
    """Git content wins; otherwise the DVC output that declares `path`."""
    try:
        canonical, node = resolve(path, tree.node)
    except NotFoundError:
        source = find_dvc_source(tree, path)
        if source is None:
            raise
        return source
    return GitSource(canonical, node)


def find_dvc_source(tree: TreeReader, path: PurePosixPath) -> DvcSource | None:
    for directory in path.parents:
        for out in _outs_declared_in(tree, directory):
            match = find_out([out], path)
            if match is not None:
                root = _dvc_root(tree, directory)
                where = str(root / DVC_DIR / CONFIG_FILE)
                config = parse_dvc_config(_read_optional(tree, root / DVC_DIR / CONFIG_FILE), where)
                return DvcSource(match[0], match[1], config, where, root)
    return None


def _outs_declared_in(tree: TreeReader, directory: PurePosixPath) -> Iterator[DvcOut]:
    node = tree.node(directory) if directory != ROOT else Node(NodeKind.DIR)
    if node is None or node.kind is not NodeKind.DIR:
        return
    for name, child in sorted(tree.children(directory)):
        if child.kind is not NodeKind.FILE:
            continue
        where = directory / name
        if name.endswith(DVCFILE_SUFFIX):
            yield from parse_dvcfile(read_bounded(tree, where, child), where)
        elif name == LOCK_FILE:
            project = _read_optional(tree, directory / PROJECT_FILE)
            yield from parse_lockfile(read_bounded(tree, where, child), project, where)


def _dvc_root(tree: TreeReader, directory: PurePosixPath) -> PurePosixPath:
    for candidate in (directory, *directory.parents):
        node = tree.node(candidate / DVC_DIR)
        if node is not None and node.kind is NodeKind.DIR:
            return candidate
    raise BadInputError(f"no {DVC_DIR} directory above {directory} (not a DVC project)")


def _read_optional(tree: TreeReader, path: PurePosixPath) -> bytes | None:
    node = tree.node(path)
    if node is None or node.kind is not NodeKind.FILE:
        return None
    return read_bounded(tree, path, node)


@dataclass(frozen=True)
class TreeFile:
    """A file to write: `relpath` inside the artifact, `path` its content's canonical path."""

    relpath: PurePosixPath
    path: PurePosixPath
    node: Node


def walk_files(tree: TreeReader, directory: PurePosixPath) -> Iterator[TreeFile]:
    """Files under a git directory, depth first in name order; symlinks are followed inside the
    repository and copied. A stack of listings, not recursion; a tree deeper than MAX_DEPTH is
    refused in one line when the walk gets there."""
    stack = [(iter(sorted(tree.children(directory))), directory, ROOT)]
    while stack:
        listing, current, inside = stack[-1]
        entry = next(listing, None)
        if entry is None:
            stack.pop()
            continue
        name, node = entry
        child, relpath = current / name, inside / _utf8_name(name, current)
        check_depth(relpath, "the artifact's file")
        if node.kind is NodeKind.DIR:
            stack.append((iter(sorted(tree.children(child))), child, relpath))
        elif node.kind is NodeKind.SYMLINK:
            canonical, target = resolve(child, tree.node)
            if target.kind is not NodeKind.FILE:
                raise UnsupportedError(f"{child} is a symlink to a directory")
            yield TreeFile(relpath, canonical, target)
        elif node.kind is NodeKind.SUBMODULE:
            raise UnsupportedError(f"{child} is a git submodule")
        else:
            yield TreeFile(relpath, child, node)


def _utf8_name(name: str, directory: PurePosixPath) -> str:
    """Git allows any bytes in a name (the adapter keeps them as surrogates); files written and
    listed in the manifest need UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise UnsupportedError(f"{directory / shown}: the file name is not UTF-8") from None
    return name


def check_file_not_lfs(tree: TreeReader, path: PurePosixPath, node: Node) -> None:
    """check_not_lfs without reading a file too large to be a pointer."""
    if node.size <= LFS_POINTER_MAX:
        check_not_lfs(tree.read(path), path)


def check_not_lfs(data: bytes, path: PurePosixPath) -> None:
    if len(data) <= LFS_POINTER_MAX and data.startswith(LFS_HEADER):
        oid = next(
            (
                line[4:]
                for line in data.decode("utf-8", "replace").splitlines()
                if line.startswith("oid ")
            ),
            "unknown",
        )
        raise UnsupportedError(
            f"{path} is a git-lfs pointer ({oid}); git-lfs content is not fetched by gitstage,"
            " track the artifact with DVC or commit it to git"
        )

"""Write a located artifact into a staging directory: git blobs, or DVC objects from a remote."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from gitstage.adapters.fetch.dvc_stores import ObjectStore, open_store
from gitstage.adapters.fetch.staging import Staging
from gitstage.domain.fetch.dvc_files import (
    DIR_SUFFIX,
    DirEntry,
    DvcOut,
    check_supported,
    object_key,
    parse_dir_listing,
)
from gitstage.domain.fetch.errors import IntegrityError, NotFoundError
from gitstage.domain.fetch.limits import Deadline
from gitstage.domain.fetch.plan import (
    DvcSource,
    GitSource,
    Source,
    TreeFile,
    TreeReader,
    check_not_lfs,
    walk_files,
)
from gitstage.domain.fetch.repo_paths import ROOT, NodeKind

Kind = Literal["git", "dvc"]
WHOLE = "."
MAX_LISTING = 64 * 1024 * 1024


@dataclass(frozen=True)
class Located:
    """Where the artifact is: the commit's tree, its path there, and the repository's own
    directory when it is a local one (a DVC remote may be relative to it)."""

    tree: TreeReader
    path: PurePosixPath
    repo_dir: Path | None


def materialize(
    source: Source,
    located: Located,
    staging: Staging,
    environ: Mapping[str, str],
    deadline: Deadline | None = None,
) -> tuple[Kind, str]:
    """Returns the kind of source and the artifact's location inside DEST. DVC downloads end
    by `deadline` (git blobs are local by now)."""
    if isinstance(source, GitSource):
        return "git", _from_git(source, located, staging)
    return "dvc", _from_dvc(source, located, staging, environ, deadline)


def _from_git(source: GitSource, located: Located, staging: Staging) -> str:
    if source.node.kind is NodeKind.FILE:
        name = PurePosixPath(located.path.name)
        _write_blob(located.tree, TreeFile(name, source.path, source.node), staging)
        return name.as_posix()
    for item in walk_files(located.tree, source.path):
        _write_blob(located.tree, item, staging)
    return WHOLE


def _write_blob(tree: TreeReader, item: TreeFile, staging: Staging) -> None:
    """The size limit is checked from the blob's header: a blob over it is never read."""
    staging.budget.check(item.node.size, str(item.path))
    data = tree.read(item.path)
    check_not_lfs(data, item.path)
    staging.write(item.relpath, iter([data]), executable=item.node.executable)


def _from_dvc(
    source: DvcSource,
    located: Located,
    staging: Staging,
    environ: Mapping[str, str],
    deadline: Deadline | None,
) -> str:
    out = source.out
    check_supported(out)
    remote = source.config.remote(out.remote, source.config_where)
    store = open_store(
        remote,
        repo_dir=located.repo_dir,
        dvc_root=source.dvc_root.as_posix(),
        environ=environ,
        deadline=deadline,
    )
    name = PurePosixPath(located.path.name)
    if source.is_whole_out and out.size is not None:
        staging.budget.check(out.size, f"{out.path}")
        staging.progress.total = out.size
    if not out.is_dir:
        _download(store, out.object_key, name, out.md5, staging)
        return name.as_posix()
    entries = _listing(store, out)
    selected, target = _select(entries, source.inner, name, out)
    for relpath, md5 in selected:
        _download(store, object_key(md5), relpath, md5, staging)
    return target


def _download(
    store: ObjectStore, key: str, relpath: PurePosixPath, md5: str, staging: Staging
) -> None:
    with store.open(key) as download:
        if download.length is not None:  # announced: refused before a byte is read
            staging.budget.check(download.length, str(relpath))
        staging.write(relpath, download.chunks(), md5=md5, length=download.length)


def _listing(store: ObjectStore, out: DvcOut) -> list[DirEntry]:
    parts: list[bytes] = []
    with store.open(out.object_key) as download:
        for chunk in download.chunks():
            parts.append(chunk)
            if sum(len(part) for part in parts) > MAX_LISTING:
                raise IntegrityError(f"the DVC listing of {out.path} is over {MAX_LISTING} bytes")
    data = b"".join(parts)
    expected = out.md5.removesuffix(DIR_SUFFIX)
    if hashlib.md5(data, usedforsecurity=False).hexdigest() != expected:
        raise IntegrityError(f"checksum mismatch for the DVC listing of {out.path}")
    return parse_dir_listing(data, f"the DVC listing of {out.path}")


def _select(
    entries: list[DirEntry], inner: PurePosixPath, name: PurePosixPath, out: DvcOut
) -> tuple[list[tuple[PurePosixPath, str]], str]:
    """All entries, the one file `inner`, or the entries under the directory `inner`."""
    if inner == ROOT:
        return [(entry.relpath, entry.md5) for entry in entries], WHOLE
    for entry in entries:
        if entry.relpath == inner:
            return [(name, entry.md5)], name.as_posix()
    under = [
        (entry.relpath.relative_to(inner), entry.md5)
        for entry in entries
        if inner in entry.relpath.parents
    ]
    if not under:
        raise NotFoundError(f"{out.path / inner} is not in the DVC output {out.path}")
    return under, WHOLE

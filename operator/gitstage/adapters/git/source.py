"""Where a registry read starts: the repository's directories, tag refs, HEAD and `.gto` text.

Kept apart from reader.py, and light on imports, because this is all a warm
`gitstage show --json` reads before it finds its answer in the result cache.
"""

from __future__ import annotations

import os
import time

from gitstage.adapters.git.refdb import (
    RACY_NS,
    GitDirs,
    PackedRefsMemo,
    RefDb,
    Stamp,
    locate,
    stamp_of,
)
from gitstage.adapters.git.repository import dirs_from_libgit2
from gitstage.domain.registry.files import CONFIG_FILE
from gitstage.domain.yaml_bounds import MAX_BYTES

MIRROR_CONFIG_FILE = "gitstage-head.gto"  # the `.gto` at HEAD a mirror keeps (remote_mirror.py)


class RegistrySource:
    """`tags`: tag name -> object id; `head_oid`: what HEAD resolves to; `.gto`'s text.

    `stamps` are those of every file and directory these were read from, or None when one of
    them changed too recently to vouch for the read (RACY_NS).
    """

    __slots__ = ("config_text", "dirs", "head_oid", "refs", "stamps", "tags")

    def __init__(
        self,
        dirs: GitDirs,
        refs: RefDb,
        tags: dict[str, str],
        head_oid: str | None,
        config_text: str | None,
        *,
        stamps: tuple[Stamp, ...] | None = None,
    ) -> None:
        self.dirs = dirs
        self.refs = refs
        self.tags = tags
        self.head_oid = head_oid
        self.config_text = config_text
        self.stamps = stamps


def find_dirs(path: str | os.PathLike[str] = ".") -> GitDirs:
    """The repository holding `path` (libgit2 finds the layouts git's files alone do not show)."""
    dirs = locate(path)
    if dirs is None:
        dirs = dirs_from_libgit2(path)
    return dirs


def open_source(
    path: str | os.PathLike[str] | GitDirs = ".", packed: PackedRefsMemo | None = None
) -> RegistrySource:
    """`packed`: a long-lived reader's memo of the parsed `packed-refs`."""
    dirs = path if isinstance(path, GitDirs) else find_dirs(path)
    started_ns = time.time_ns()
    refs = RefDb(dirs, packed)
    tags, head = refs.tags(), refs.resolve("HEAD")
    stamps = list(refs.stamps)
    config_path = config_path_of(dirs)
    stamps.append(stamp_of(config_path))  # stamped before it is read, as the refs are
    config_text = _read_text(config_path)
    vouching = all(mtime < started_ns - RACY_NS for _, _, _, mtime in stamps)
    unique = tuple(dict.fromkeys(stamps))
    return RegistrySource(dirs, refs, tags, head, config_text, stamps=unique if vouching else None)


def config_path_of(dirs: GitDirs) -> str:
    """`.gto` in the work tree; in a bare repository, the copy a remote mirror keeps of HEAD's."""
    if dirs.workdir:
        return os.path.join(dirs.workdir, CONFIG_FILE)
    return os.path.join(dirs.git_dir, MIRROR_CONFIG_FILE)


def config_text_in(workdir: str | None) -> str | None:
    """`.gto`'s text in a working tree; None without one (or in a bare repository)."""
    return _read_text(os.path.join(workdir, CONFIG_FILE)) if workdir else None


def _read_text(path: str) -> str | None:
    """`.gto`'s text; WrongConfigError when it is over the YAML size bound or not UTF-8."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)  # never more than the bound into memory
    try:
        if len(data) <= MAX_BYTES:
            return data.decode("utf-8")
        reason = f"over the limit of {MAX_BYTES} bytes"
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text ({error.reason} at byte {error.start})"
    from gitstage.domain.registry.config import WrongConfigError  # only on this error path

    raise WrongConfigError(path, reason)

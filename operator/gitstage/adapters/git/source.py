"""Where a registry read starts: the repository's directories, tag refs, HEAD and `.gto` text.

Kept apart from reader.py, and light on imports, because this is all a warm
`gitstage show --json` reads before it finds its answer in the result cache.
"""

from __future__ import annotations

import os

from gitstage.adapters.git.refdb import GitDirs, RefDb, locate

CONFIG_FILE = ".gto"  # as gitstage.domain.config, which this module does not import


class RegistrySource:
    """`tags`: tag name -> object id; `head_oid`: what HEAD resolves to; `.gto`'s text."""

    __slots__ = ("config_text", "dirs", "head_oid", "refs", "tags")

    def __init__(
        self,
        dirs: GitDirs,
        refs: RefDb,
        tags: dict[str, str],
        head_oid: str | None,
        config_text: str | None,
    ) -> None:
        self.dirs = dirs
        self.refs = refs
        self.tags = tags
        self.head_oid = head_oid
        self.config_text = config_text


def open_source(path: str | os.PathLike[str] = ".") -> RegistrySource:
    dirs = locate(path)
    if dirs is None:
        from gitstage.adapters.git.reader import dirs_from_libgit2

        dirs = dirs_from_libgit2(path)
    refs = RefDb(dirs)
    return RegistrySource(
        dirs, refs, refs.tags(), refs.resolve("HEAD"), config_text_in(dirs.workdir)
    )


def config_text_in(workdir: str | None) -> str | None:
    """`.gto`'s text in a working tree; None without one (or in a bare repository)."""
    if not workdir:
        return None
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()

"""Find a repository and list its refs by reading git's files directly (no libgit2).

Listing refs is the only git work a warm `gitstage show` does (objects come from the object
cache), so it must not pay for importing pygit2. The files-backend layout is read exactly as git
writes it: `packed-refs` (its `^peeled` lines skipped), then loose refs, which win over packed
ones; symbolic refs are skipped as libgit2's listing skips them. What cannot be read completely
is an error (RepositoryError), never a shorter listing: a corrupt `packed-refs`, a loose tag or
a directory of tags that cannot be read, a loose tag that holds no object id. Repositories this
reader does not handle (bare or reftable ones) return None from `locate`, and the caller uses
libgit2 instead.

While it reads, a RefDb records a stamp (inode, size, modification time) of everything it looked
at: `packed-refs`, each directory of loose tags, each loose ref it tried (absent ones included).
Git writes every ref by renaming a lock file into place, which gives the file a new inode and its
directory a new modification time, so equal stamps mean an unchanged listing (see result_cache).
"""

from __future__ import annotations

import os
import time

TAGS = "refs/tags/"
_OID_PATTERN = rb"[0-9a-f]{40}(?:[0-9a-f]{24})?"
# Anchored on a newline, not `^` with MULTILINE: three times faster on 120k lines.
_PACKED_TAG_TEXT = "\n([0-9a-f]{40,64}) refs/tags/([^\n]+)"
_HEX = b"0123456789abcdef"
_MAX_SYMREF_DEPTH = 5
_SLICE_CHARS = 1 << 20  # packed-refs is scanned in slices of about this many characters
_REF_SEPARATOR = b" refs/"  # between the object id and the name; names hold no space
_TAG_SEPARATOR = b" refs/tags/"


# A stamp this recent may share its timestamp with a write that follows it (file times are only
# as fine as the kernel's clock tick), so it cannot vouch for what was read: git's "racy" rule.
RACY_NS = 2_000_000_000


class RepositoryError(RuntimeError):
    """A path that is not a readable git repository, or refs or objects that cannot be read.

    Defined here, the lowest module of the git adapter, and re-exported by repository.py.
    """


# (path, inode, size, mtime in ns); an absent path is (path, 0, -1, 0).
Stamp = tuple[str, int, int, int]


def stamp_of(path: str) -> Stamp:
    """The stamp of `path` as it is now (a file or a directory, followed through symlinks)."""
    try:
        return _stamp(path, os.stat(path))
    except OSError:
        return _absent(path)


def _absent(path: str) -> Stamp:
    return (path, 0, -1, 0)


def _stamp(path: str, stat: os.stat_result) -> Stamp:
    return (path, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class GitDirs:
    """Where a repository keeps its files: `git_dir` (HEAD), `common_dir` (refs, objects).

    A plain class, not a dataclass: this module is on the warm path of `gitstage show`, and
    importing dataclasses costs more than listing a small registry's refs.
    """

    __slots__ = ("common_dir", "git_dir", "workdir")

    def __init__(self, git_dir: str, common_dir: str, workdir: str | None) -> None:
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.workdir = workdir

    def _fields(self) -> tuple[str, str, str | None]:
        return self.git_dir, self.common_dir, self.workdir

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GitDirs) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "GitDirs(git_dir={!r}, common_dir={!r}, workdir={!r})".format(*self._fields())


def locate(path: str | os.PathLike[str]) -> GitDirs | None:
    """The repository holding `path`, walking up as git does, when it is found through a `.git`
    directory or file; None otherwise (no repository, or a layout this reader leaves to libgit2).
    """
    current = os.path.abspath(path)
    if not os.path.isdir(current):
        current = os.path.dirname(current)
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return _at(current)
        if _looks_like_git_dir(current):
            return None  # a bare repository (or a git dir itself): libgit2 knows its work tree
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _at(directory: str) -> GitDirs | None:
    dotgit = os.path.join(directory, ".git")
    git_dir = dotgit if os.path.isdir(dotgit) else _gitdir_file(dotgit, directory)
    if git_dir is None or not _looks_like_git_dir(git_dir):
        return None
    common = common_dir_of(git_dir)
    if os.path.isdir(os.path.join(common, "reftable")):
        return None
    return GitDirs(git_dir, common, directory)


def _gitdir_file(dotgit: str, directory: str) -> str | None:
    """`.git` files (worktrees, submodules) hold `gitdir: PATH`, relative to their directory."""
    try:
        with open(dotgit, encoding="utf-8") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    return os.path.normpath(os.path.join(directory, text[len("gitdir:") :].strip()))


def common_dir_of(git_dir: str) -> str:
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
            return os.path.normpath(os.path.join(git_dir, handle.read().strip()))
    except (OSError, UnicodeDecodeError):
        return git_dir


def _looks_like_git_dir(path: str) -> bool:
    """libgit2's test: HEAD, plus objects and refs here or in the common directory."""
    if not os.path.isfile(os.path.join(path, "HEAD")):
        return False
    common = common_dir_of(path)
    return os.path.isdir(os.path.join(common, "objects")) and os.path.isdir(
        os.path.join(common, "refs")
    )


class PackedRefsMemo:
    """The tags of one `packed-refs` file, kept by a long-lived reader while its stamp holds:
    git replaces the file by renaming a new one into place, so an equal stamp is an equal file,
    and a push adds loose refs beside it (on a 120,000-tag registry, 0.15 s not parsed again)."""

    __slots__ = ("stamp", "tags")

    def __init__(self) -> None:
        self.stamp: Stamp | None = None
        self.tags: dict[str, str] = {}


class RefDb:
    """The refs of one repository; `packed-refs` is read at most once."""

    def __init__(self, dirs: GitDirs, memo: PackedRefsMemo | None = None) -> None:
        self.dirs = dirs
        self.stamps: list[Stamp] = []  # of what was read, each taken before reading it
        self._packed: bytes | None = None
        self._memo = memo

    def packed_refs(self) -> bytes:
        if self._packed is None:
            path = os.path.join(self.dirs.common_dir, "packed-refs")
            try:
                with open(path, "rb") as handle:
                    self.stamps.append(_stamp(path, os.fstat(handle.fileno())))
                    self._packed = handle.read()
            except FileNotFoundError:
                self.stamps.append(_absent(path))
                self._packed = b""
        return self._packed

    def tags(self) -> dict[str, str]:
        """Tag name (without `refs/tags/`) -> the object id the ref points at."""
        found = dict(self._packed_tags())
        _walk_loose(os.path.join(self.dirs.common_dir, "refs", "tags"), found, self.stamps)
        return found

    def _packed_tags(self) -> dict[str, str]:
        path = os.path.join(self.dirs.common_dir, "packed-refs")
        memo = self._memo
        if memo is not None and memo.stamp is not None and memo.stamp == stamp_of(path):
            self.stamps.append(memo.stamp)
            return memo.tags
        packed = self.packed_refs()
        found = _parse_packed_tags(packed, path) if packed else {}
        stamp = self.stamps[-1]  # packed_refs() stamped the file it read
        if memo is not None and stamp[3] < time.time_ns() - RACY_NS:
            memo.stamp, memo.tags = stamp, found
        return found

    def resolve(self, name: str) -> str | None:
        """The object id `name` (a full ref name or HEAD) points at, following symbolic refs."""
        for _ in range(_MAX_SYMREF_DEPTH):
            content = self._loose(name)
            if content is None:
                return self._packed_oid(name)
            if not content.startswith(b"ref:"):
                oid = _oid_of(content)
                if oid is None:
                    raise RepositoryError(f"{name} holds no object id: {content[:60]!r}")
                return oid
            name = content[4:].strip().decode("utf-8", "replace")
        return None

    def _packed_oid(self, name: str) -> str | None:
        import re

        pattern = rb"^(" + _OID_PATTERN + rb") " + re.escape(name.encode()) + rb"$"
        match = re.search(pattern, self.packed_refs(), re.MULTILINE)
        return match[1].decode("ascii") if match else None

    def _loose(self, name: str) -> bytes | None:
        # HEAD and per-worktree refs live in the worktree's git dir; the rest in the common dir.
        own = name == "HEAD" or name.startswith(("refs/worktree/", "refs/bisect/"))
        base = self.dirs.git_dir if own else self.dirs.common_dir
        path = os.path.join(base, *name.split("/"))
        try:
            with open(path, "rb") as handle:
                self.stamps.append(_stamp(path, os.fstat(handle.fileno())))
                return handle.read(4096)  # a symbolic ref or an object id
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self.stamps.append(stamp_of(path))
            return None
        except OSError as error:  # HEAD unreadable must not read as an unborn branch
            raise RepositoryError(f"cannot read {path}: {error.strerror}") from None


def _parse_packed_tags(packed: bytes, path: str) -> dict[str, str]:
    import re  # only here: a loose-only repository's warm read never compiles a pattern

    # One decode of the whole file, not two per ref (an invalid byte sequence cannot
    # span the ASCII space or newline around a name, so names decode the same).
    text = "\n" + packed.decode("utf-8", "replace")
    pattern = re.compile(_PACKED_TAG_TEXT)
    pairs = []
    for start, end in _slices(text):  # one long findall would hold the GIL for 80 ms
        pairs += pattern.findall(text, start, end)
    check_packed(packed, len(pairs), path)
    return {name: oid for oid, name in pairs}


def check_packed(packed: bytes, tag_lines: int, path: str) -> None:
    """Raise unless every line of `packed-refs` is the header, a peeled `^OID` or `OID NAME`.

    Counting instead of matching each line keeps a 120k-tag file cheap: a well-formed ref line
    holds the separator ` refs/` exactly once (names hold no space), and each ` refs/tags/` one
    must be among the `tag_lines` the tag pattern matched. A truncated or garbled line breaks
    one of these counts, as a dropped tag would; git and libgit2 refuse such a file too.
    """
    lines = packed.count(b"\n") + (not packed.endswith(b"\n"))
    header = packed.startswith(b"#")
    peeled = packed.count(b"^")  # no ref name holds a caret: only peeled lines do
    refs = packed.count(_REF_SEPARATOR)
    if packed.count(_TAG_SEPARATOR) != tag_lines or lines != header + peeled + refs:
        raise RepositoryError(f"corrupt {path}: a line is not a ref (git would refuse it too)")


def _walk_loose(root: str, out: dict[str, str], stamps: list[Stamp]) -> None:
    """Loose refs under `root`, each directory opened once and its files read relative to its
    descriptor (no path lookups); depth-first with a stack, so no nesting exhausts recursion."""
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:  # no tags yet, or a directory deleted with its last ref
            stamps.append(_absent(directory))
            continue
        except OSError as error:
            raise RepositoryError(f"cannot read {directory}: {error.strerror}") from None
        try:
            stamps.append(_stamp(directory, os.fstat(fd)))
            with os.scandir(fd) as listing:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in listing]
            for name, is_dir in entries:
                if is_dir:
                    pending.append((os.path.join(directory, name), f"{prefix}{name}/"))
                elif not name.endswith(".lock"):
                    oid = _read_oid(name, fd, os.path.join(directory, name))
                    if oid is not None:
                        out[prefix + name] = oid
        except OSError as error:
            raise RepositoryError(f"cannot read {directory}: {error.strerror}") from None
        finally:
            os.close(fd)


def _read_oid(name: str, directory_fd: int, path: str) -> str | None:
    """The object id of a loose tag; None when it was deleted meanwhile or is symbolic."""
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=directory_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise RepositoryError(f"cannot read {path}: {error.strerror}") from None
    try:
        content = os.read(fd, 128)
    except OSError as error:  # a directory that replaced the file, or a read error
        raise RepositoryError(f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(fd)
    oid = _oid_of(content)
    if oid is None and not content.startswith(b"ref:"):
        raise RepositoryError(f"{path} holds no object id: {content[:60]!r}")
    return oid


def _oid_of(content: bytes) -> str | None:
    """A loose ref's object id; None for symbolic refs and garbage."""
    text = content.strip()
    if len(text) not in (40, 64) or text.translate(None, _HEX):
        return None
    return text.decode("ascii")


def _slices(text: str) -> list[tuple[int, int]]:
    """(start, end) bounds covering `text`, each ending just before a newline (or at the end),
    so that a match, which starts at a newline and never spans one, falls in exactly one."""
    bounds, start = [], 0
    while start < len(text):
        end = text.find("\n", start + _SLICE_CHARS)
        end = len(text) if end < 0 else end
        bounds.append((start, end))
        start = end
    return bounds

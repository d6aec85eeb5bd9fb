"""Printed `show --json` documents, keyed by everything that decides them.

A document is a function of: the tag refs (name -> object id), the objects they reach (immutable
by id), HEAD's object id (artifacts.yaml at HEAD), `.gto` and the `GTO_*` environment, the
command's arguments and gitstage's own code. The key is a BLAKE2b digest over all of these: the
full tag listing in the order it was read, so a new, moved or deleted tag always misses, as does
any edit of a gitstage source file (their sizes and modification times are part of the key). A
document computed while an object was missing (a partial clone still fetching) is not stored.

Each entry also keeps the request key (the digest of what does not come from the repository's
refs: arguments, paths, environment, code) and the stamps of the files and directories its refs
and `.gto` were read from (source.py). While those stamps are unchanged, the entry is served
without listing a single ref (`get_unchanged`): that is the whole work of a warm run. Stamps
rely on git's discipline of writing refs by renaming lock files; a loose tag file rewritten in
place by another tool leaves its directory's time alone and is seen only when the entry is next
missed (any other ref change, a flag, `GITSTAGE_RESULT_CACHE=off`).

The file sits beside the object cache (`gitstage/results-v2.cache` in the git directory) and is
written atomically, as marshal behind a BLAKE2b checksum. It keeps the last few documents, so
alternating flags do not evict each other. `GITSTAGE_CACHE=off` disables it with the object
cache; `GITSTAGE_RESULT_CACHE=off` disables this one alone.

This module imports little on purpose: a hit is the whole work of a warm `gitstage show --json`.
"""

from __future__ import annotations

import marshal
import os
from _blake2 import blake2b  # what hashlib re-exports, without loading OpenSSL's bindings

from gitstage.adapters.git.atomic_file import write_atomically
from gitstage.adapters.git.refdb import Stamp, stamp_of

TYPE_CHECKING = False  # typing's own costs an import; mypy reads any TYPE_CHECKING as True
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping  # importing collections costs 2 ms

CACHE_DIR = "gitstage"  # as object_cache.py
DISABLE_ENV = "GITSTAGE_CACHE"

MAGIC = b"gitstage-results\x00v2\n"
RESULT_FILE = "results-v2.cache"
RESULT_ENV = "GITSTAGE_RESULT_CACHE"
RETIRED_FILES = ("results-v1.cache",)  # earlier formats, removed when this one is written
KEEP = 8
CHECKSUM_SIZE = 16
_OFF = ("0", "off", "false", "no")
_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def results_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return (
        env.get(DISABLE_ENV, "").lower() not in _OFF and env.get(RESULT_ENV, "").lower() not in _OFF
    )


def result_path(common_dir: str) -> str:
    return os.path.join(common_dir, CACHE_DIR, RESULT_FILE)


def code_fingerprint(package: str = _PACKAGE) -> bytes:
    """Path, size and mtime of every gitstage source file: an edit invalidates every entry."""
    parts: list[str] = []
    pending = [package]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    stat = entry.stat()
                    parts.append(f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    parts.sort()
    return "\n".join(parts).encode()


def request_key(
    *,
    request: Iterable[object],
    git_dir: str,
    workdir: str | None,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The digest of the inputs that are not read from the repository's refs or `.gto`."""
    env = os.environ if environ is None else environ
    digest = blake2b(digest_size=32)
    digest.update(code_fingerprint())
    digest.update(repr((tuple(request), git_dir, workdir)).encode())
    digest.update(repr(sorted((k, v) for k, v in env.items() if k.startswith("GTO_"))).encode())
    return digest.digest()


def result_key(
    request_digest: bytes,
    *,
    tags: Mapping[str, str],
    head: str | None,
    config_text: str | None,
) -> bytes:
    """The digest of every input of a `show` document (see the module docstring)."""
    digest = blake2b(request_digest, digest_size=32)
    digest.update(repr((head, config_text)).encode())
    # Names cannot hold NUL or newline: the joined listing is unambiguous.
    digest.update("\n".join(map("\0".join, tags.items())).encode("utf-8", "surrogateescape"))
    return digest.digest()


# key, document, request key, stamps (None: the read could not be vouched for).
Entry = tuple[bytes, str, bytes, tuple[Stamp, ...] | None]


class ResultCache:
    """The stored documents of one repository (an empty, unsaved cache when disabled)."""

    def __init__(self, path: str | None, entries: list[Entry] | None = None) -> None:
        self.path = path
        self.entries = entries or []

    @classmethod
    def open(cls, common_dir: str) -> ResultCache:
        if not results_enabled():
            return cls(None)
        path = result_path(common_dir)
        return cls(path, _load(path))

    def get(self, key: bytes) -> str | None:
        for stored, text, _, _ in self.entries:
            if stored == key:
                return text
        return None

    def get_unchanged(self, request_digest: bytes) -> str | None:
        """The document of this request whose stamped files are all as they were, if any."""
        for _, text, request, stamps in self.entries:
            if request == request_digest and stamps is not None and _unchanged(stamps):
                return text
        return None

    def put(
        self,
        key: bytes,
        text: str,
        request_digest: bytes = b"",
        stamps: tuple[Stamp, ...] | None = None,
    ) -> bool:
        """Store `text` as the newest entry; False when not written (never raises)."""
        if self.path is None:
            return False
        kept = [entry for entry in self.entries if entry[0] != key][: KEEP - 1]
        self.entries = [(key, text, request_digest, stamps), *kept]
        if not write_sealed(self.path, MAGIC, marshal.dumps(self.entries)):
            return False
        _remove_retired(os.path.dirname(self.path))
        return True


def write_sealed(path: str, magic: bytes, payload: bytes) -> bool:
    """Write `magic`, a BLAKE2b checksum of `payload`, then `payload`, atomically; False when
    the directory refuses it (a cache is only ever an optimization)."""
    try:
        write_atomically(path, magic + _checksum(payload) + payload)
    except OSError:
        return False
    return True


def read_sealed(path: str, magic: bytes) -> bytes | None:
    """The payload of a file `write_sealed` wrote with `magic`; None for anything else."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    header = len(magic) + CHECKSUM_SIZE
    if len(data) < header or not data.startswith(magic):
        return None
    payload = data[header:]
    return payload if _checksum(payload) == data[len(magic) : header] else None


def _checksum(payload: bytes) -> bytes:
    return blake2b(payload, digest_size=CHECKSUM_SIZE).digest()


def _remove_retired(directory: str) -> None:
    import contextlib  # here, not above: a warm read never writes

    for name in RETIRED_FILES:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))


def _unchanged(stamps: tuple[Stamp, ...]) -> bool:
    return all(stamp_of(stamp[0]) == stamp for stamp in stamps)


def _load(path: str) -> list[Entry] | None:
    payload = read_sealed(path, MAGIC)
    if payload is None:
        return None
    try:
        # Written by this module into the repository's own git dir, checked by its checksum first.
        entries = marshal.loads(payload)  # noqa: S302
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(entries, list) or not all(_is_entry(e) for e in entries):
        return None
    return entries


def _is_entry(entry: object) -> bool:
    return (
        isinstance(entry, tuple)
        and len(entry) == 4
        and isinstance(entry[0], bytes)
        and isinstance(entry[1], str)
        and isinstance(entry[2], bytes)
        and (entry[3] is None or (isinstance(entry[3], tuple) and all(map(_is_stamp, entry[3]))))
    )


def _is_stamp(stamp: object) -> bool:
    return (
        isinstance(stamp, tuple)
        and len(stamp) == 4
        and isinstance(stamp[0], str)
        and all(isinstance(n, int) for n in stamp[1:])
    )

"""Printed `show --json` documents, keyed by everything that decides them.

A document is a function of: the tag refs (name -> object id), the objects they reach (immutable
by id), HEAD's object id (artifacts.yaml at HEAD), `.gto` and the `GTO_*` environment, the
command's arguments and gitstage's own code. The key is a BLAKE2b digest over all of these: the
full tag listing in the order it was read, so a new, moved or deleted tag always misses, as does
any edit of a gitstage source file (their sizes and modification times are part of the key). A
document computed while an object was missing (a partial clone still fetching) is not stored.

The file sits beside the object cache (`gitstage/results-v1.cache` in the git directory) and is
written the same way (CRC-checked marshal, atomic rename). It keeps the last few documents, so
alternating flags do not evict each other. `GITSTAGE_CACHE=off` disables it with the object
cache; `GITSTAGE_RESULT_CACHE=off` disables this one alone.

This module imports little on purpose: a hit is the whole work of a warm `gitstage show --json`.
"""

from __future__ import annotations

import marshal
import os
import zlib
from _blake2 import blake2b  # what hashlib re-exports, without loading OpenSSL's bindings
from collections.abc import Iterable, Mapping

from gitstage.adapters.git.atomic_file import write_atomically

CACHE_DIR = "gitstage"  # as object_cache.py
DISABLE_ENV = "GITSTAGE_CACHE"

MAGIC = b"gitstage-results\x00v1\n"
RESULT_FILE = "results-v1.cache"
RESULT_ENV = "GITSTAGE_RESULT_CACHE"
KEEP = 8
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


def result_key(
    *,
    request: Iterable[object],
    git_dir: str,
    workdir: str | None,
    tags: Mapping[str, str],
    head: str | None,
    config_text: str | None,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The digest of every input of a `show` document (see the module docstring)."""
    env = os.environ if environ is None else environ
    digest = blake2b(digest_size=32)
    digest.update(code_fingerprint())
    digest.update(repr((tuple(request), git_dir, workdir, head, config_text)).encode())
    digest.update(repr(sorted((k, v) for k, v in env.items() if k.startswith("GTO_"))).encode())
    # Names cannot hold NUL or newline: the joined listing is unambiguous.
    digest.update("\n".join(map("\0".join, tags.items())).encode("utf-8", "surrogateescape"))
    return digest.digest()


class ResultCache:
    """The stored documents of one repository (an empty, unsaved cache when disabled)."""

    def __init__(self, path: str | None, entries: list[tuple[bytes, str]] | None = None) -> None:
        self.path = path
        self.entries = entries or []

    @classmethod
    def open(cls, common_dir: str) -> ResultCache:
        if not results_enabled():
            return cls(None)
        path = result_path(common_dir)
        return cls(path, _load(path))

    def get(self, key: bytes) -> str | None:
        for stored, text in self.entries:
            if stored == key:
                return text
        return None

    def put(self, key: bytes, text: str) -> bool:
        """Store `text` as the newest entry; False when not written (never raises)."""
        if self.path is None:
            return False
        kept = [(k, t) for k, t in self.entries if k != key][: KEEP - 1]
        self.entries = [(key, text), *kept]
        payload = marshal.dumps(self.entries)
        try:
            write_atomically(self.path, MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload)
        except OSError:
            return False
        return True


def _load(path: str) -> list[tuple[bytes, str]] | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    header = len(MAGIC) + 4
    if len(data) < header or not data.startswith(MAGIC):
        return None
    payload = data[header:]
    if zlib.crc32(payload).to_bytes(4, "big") != data[len(MAGIC) : header]:
        return None
    try:
        # Written by this module into the repository's own git dir, checked by CRC first.
        entries = marshal.loads(payload)  # noqa: S302
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(entries, list) or not all(_is_entry(e) for e in entries):
        return None
    return entries


def _is_entry(entry: object) -> bool:
    return (
        isinstance(entry, tuple)
        and len(entry) == 2
        and isinstance(entry[0], bytes)
        and isinstance(entry[1], str)
    )

"""A persistent cache of what gitstage reads from git objects, keyed by object id.

Git objects are immutable, so `object id -> what we parsed from it` never goes stale: a warm read
lists the refs (cheap files) and takes every tag, commit and artifacts.yaml from here, without
loading libgit2. Only objects first seen are read from git, then the cache is rewritten with
exactly the entries this read used (so deleted tags drop out).

The file lives in the repository's git directory (`gitstage/objects-v3.cache`): a magic line, a
CRC-32 of the payload, then the payload: chunks of at most CHUNK_ROWS rows of one table, each
in `marshal` format (the fastest loader in the standard library; it builds data only, never code
that runs) behind its length. Chunks keep every marshal call short: a call holds the GIL, and
the operator's event loop shares the process with the thread that reads (one 17 MB load held
it for 0.1 s). A file that is truncated, corrupt or from
another format version is ignored and rebuilt; writes go to a temporary file renamed into place,
so concurrent readers and writers only ever see whole files. A repository whose git directory
cannot be written (read-only checkouts, other users' repositories) is read without a cache.
`GITSTAGE_CACHE=off` disables it.
"""

from __future__ import annotations

import marshal
import os
import zlib
from collections.abc import Collection, Mapping
from typing import Any

from gitstage.adapters.git.atomic_file import write_atomically

MAGIC = b"gitstage-objects\x00v3\n"
CACHE_DIR = "gitstage"
CACHE_FILE = "objects-v3.cache"
# Earlier files, removed when this one is written (v2 read a tagger zone past 14 hours as UTC).
RETIRED_FILES = ("objects-v1.cache", "objects-v2.cache")
CHUNK_ROWS = 10_000
_LENGTH = 4
DISABLE_ENV = "GITSTAGE_CACHE"
_TABLES = ("tags", "commits", "trees", "indexes")

# Row shapes (plain tuples: marshal stores nothing else this fast):
#   tags:    tag object id -> (target, tagger name, tagger email, seconds, offset seconds, message),
#            or None for an object that is not an annotated tag with a tagger
#   commits: object id -> (commit id, seconds, offset seconds, message,
#                          author name, author email, committer name, committer email)
#   trees:   "commit id:path" -> blob id of the file at that path, or None
#   indexes: blob id -> {artifact: (type, path, virtual, labels, description, custom)}
Row = Any


def cache_path(common_dir: str) -> str:
    return os.path.join(common_dir, CACHE_DIR, CACHE_FILE)


def cache_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(DISABLE_ENV, "").lower() not in ("0", "off", "false", "no")


class ObjectCache:
    """Loaded rows (read-only) plus the rows this read used or added (written back)."""

    def __init__(
        self,
        path: str | None,
        loaded: dict[str, dict[str, Row]] | None = None,
        *,
        keep_unused: bool = False,
    ) -> None:
        self.path = path
        self._loaded_tables = loaded
        self._used: dict[str, dict[str, Row]] = {table: {} for table in _TABLES}
        self._added = 0
        # An incremental read uses the rows of the artifacts it refolds only: it keeps the rest.
        self.keep_unused = keep_unused

    @classmethod
    def open(cls, common_dir: str | None) -> ObjectCache:
        """The cache of a repository; an empty, unsaved one when disabled or unreadable."""
        if common_dir is None or not cache_enabled():
            return cls(None)
        path = cache_path(common_dir)
        return cls(path, _load(path))

    @classmethod
    def open_lazily(cls, common_dir: str | None) -> ObjectCache:
        """As `open`, for an incremental read: the file is loaded on the first lookup (a read
        with nothing to refold never pays for it), and saving keeps the rows it did not use."""
        if common_dir is None or not cache_enabled():
            return cls(None, keep_unused=True)
        return cls(cache_path(common_dir), keep_unused=True)

    @property
    def _loaded(self) -> dict[str, dict[str, Row]]:
        if self._loaded_tables is None:
            self._loaded_tables = (_load(self.path) if self.path else None) or {
                table: {} for table in _TABLES
            }
        return self._loaded_tables

    def get(self, table: str, key: str) -> tuple[bool, Row]:
        """(found, row); a found row may be None (a negative entry)."""
        used = self._used[table]
        if key in used:
            return True, used[key]
        loaded = self._loaded[table]
        if key in loaded:
            row = used[key] = loaded[key]
            return True, row
        return False, None

    def take(self, table: str, keys: Collection[str]) -> dict[str, Row]:
        """The rows held for `keys` (as `get`, in bulk): key -> row, for the keys found."""
        loaded, used = self._loaded[table], self._used[table]
        found = {key: loaded[key] for key in keys if key in loaded}
        if used:  # rows put by this read, not in the loaded file
            found.update((key, used[key]) for key in keys if key not in found and key in used)
        used.update(found)
        return found

    def missing(self, table: str, keys: Collection[str]) -> list[str]:
        """The keys of `keys` this cache holds no row for (without using the rows it holds)."""
        loaded, used = self._loaded[table], self._used[table]
        return [key for key in keys if key not in loaded and key not in used]

    def put_rows(self, table: str, rows: Mapping[str, Row]) -> None:
        """As `put` for each row, in bulk (not for indexes, which `put` checks one by one)."""
        assert table != "indexes"
        self._used[table].update(rows)
        self._added += len(rows)

    def put(self, table: str, key: str, row: Row) -> None:
        """Index rows that marshal cannot store (exotic YAML values) are simply not cached."""
        if table == "indexes":
            try:
                marshal.dumps(row)
            except ValueError:
                return
        self._used[table][key] = row
        self._added += 1

    @property
    def changed(self) -> bool:
        if self.keep_unused:
            return self._added > 0
        return self._added > 0 or any(len(self._used[t]) != len(self._loaded[t]) for t in _TABLES)

    def save(self) -> bool:
        """Write the used rows (with the loaded ones, when keeping unused rows) if anything
        changed; False when not written (never raises)."""
        if self.path is None or not self.changed:
            return False
        tables = self._used
        if self.keep_unused:
            tables = {t: {**self._loaded[t], **self._used[t]} for t in _TABLES}
        try:
            write_atomically(self.path, encode(tables))
            _remove_retired(os.path.dirname(self.path))
        except OSError:
            return False
        return True


def release(cache: ObjectCache) -> None:
    """Free the rows one by one: dropping a table of 100,000 rows at once is one C call that
    holds the GIL (0.3 s measured), stalling every other thread of a long-lived process."""
    tables = [cache._used, cache._loaded_tables or {}]
    for table in (t for tables_ in tables for t in tables_.values()):
        while table:
            table.popitem()


def _remove_retired(directory: str) -> None:
    import contextlib  # here, not above: a warm read never writes

    for name in RETIRED_FILES:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))


def _load(path: str) -> dict[str, dict[str, Row]] | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return decode(data)


def encode(tables: dict[str, dict[str, Row]]) -> bytes:
    chunks: list[bytes] = []
    for table, rows in tables.items():
        items = list(rows.items())
        for start in range(0, max(len(items), 1), CHUNK_ROWS):
            chunk = marshal.dumps((table, dict(items[start : start + CHUNK_ROWS])))
            chunks += (len(chunk).to_bytes(_LENGTH, "big"), chunk)
    payload = b"".join(chunks)
    return MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload


def decode(data: bytes) -> dict[str, dict[str, Row]] | None:
    """The tables of a cache file; None for anything but an intact file of this format."""
    header = len(MAGIC) + 4
    if len(data) < header or not data.startswith(MAGIC):
        return None
    payload = memoryview(data)[header:]
    if zlib.crc32(payload).to_bytes(4, "big") != data[len(MAGIC) : header]:
        return None
    tables: dict[str, dict[str, Row]] = {table: {} for table in _TABLES}
    offset = 0
    try:
        while offset < len(payload):
            size = int.from_bytes(payload[offset : offset + _LENGTH], "big")
            offset += _LENGTH
            # Data written by this module into the repository's own git dir, checked by CRC.
            table, rows = marshal.loads(payload[offset : offset + size])  # noqa: S302
            offset += size
            tables[table].update(rows)
    except (ValueError, EOFError, TypeError, KeyError, AttributeError):
        return None
    return tables

"""Tag objects streamed by one `git cat-file --batch` child, read on the second core.

A cold read needs every tag object of the registry (120,000 on a large one). Through libgit2
each costs a lookup in the pack and a Tag object (some 11 µs); `git cat-file --batch --buffer`
sends them raw in half that time, in another process, while the interpreter reads HEAD and folds
the batches already read. A thread drains the pipe (git would stop at 64 KB otherwise) and the
caller parses the records it asks for with raw_tags.py. An object the parser defers, a missing
one, and everything after a failure of the child are simply not answered: the caller reads
those through libgit2, so rows and error messages stay those of the libgit2 path.

Not used where git might do more than read: an object directory from the environment, or a
partial clone (git would fetch a missing object from its promisor remote). git runs without
replace refs, which libgit2 ignores too.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Collection, Iterable

from gitstage.adapters.git.object_cache import Row
from gitstage.adapters.git.raw_tags import PLAIN_TAG, parse_tag_body, plain_row

STREAM_MIN = 2_000  # fewer objects than this: libgit2 reads them before git has started
_CHUNK = 1 << 20
_CAT_FILE = ("cat-file", "--batch", "--buffer")
# A tag record in the plain form: object id, size, then PLAIN_TAG's groups.
_RECORD = re.compile(rb"([0-9a-f]{40}) tag ([0-9]{1,12})\n" + PLAIN_TAG)
_NOT_TAGS = frozenset((b"commit", b"tree", b"blob"))  # lightweight tags: GTO ignores them
_ENV_OBJECT_DIRS = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")


class TagStream:
    """Rows of the objects requested at start, parsed in order as the caller asks for them."""

    def __init__(self, process: subprocess.Popen[bytes], requested: Iterable[str]) -> None:
        self._process = process
        self._pending = set(requested)  # requested, not yet answered by a record
        self._rows: dict[str, Row] = {}
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._buffer = b""
        self._ended = False
        assert process.stdout is not None
        self._reader = threading.Thread(target=_drain, args=(process.stdout, self._chunks))
        self._reader.daemon = True
        self._reader.start()

    @classmethod
    def start(cls, git_dir: str, common_dir: str, oids: Collection[str]) -> TagStream | None:
        """A stream of `oids` (in that order); None where git must not or cannot read them."""
        git = shutil.which("git")
        if git is None or not streamable(common_dir):
            return None
        with tempfile.TemporaryFile() as listing:  # git reads it as it goes: no writer thread
            listing.write("".join(f"{oid}\n" for oid in oids).encode("ascii"))
            listing.seek(0)
            try:
                process = subprocess.Popen(
                    [git, f"--git-dir={git_dir}", "--no-replace-objects", *_CAT_FILE],
                    stdin=listing,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=_environment(),
                )
            except OSError:
                return None
        return cls(process, oids)

    def take(self, oids: Collection[str]) -> dict[str, Row]:
        """The rows the stream answers among `oids`; the others are the caller's to read."""
        wanted = [oid for oid in oids if oid in self._pending or oid in self._rows]
        for oid in wanted:
            while oid in self._pending and not self._ended:
                self._read_more()
        if not self._pending and not self._ended:
            self.close()  # every record is in: reap the child now
        return {oid: self._rows[oid] for oid in wanted if oid in self._rows}

    def close(self) -> None:
        """Stop the child if it is still sending, and reap it."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._reader.join()
            self._process.stdout.close()
        self._ended = True

    def _read_more(self) -> None:
        chunk = self._chunks.get()
        if chunk is None:
            self._ended = True
            return
        try:
            self._buffer = self._parse(self._buffer + chunk)
        except (ValueError, UnicodeDecodeError):  # not git's format: libgit2 reads the rest
            self.close()

    def _parse(self, data: bytes) -> bytes:
        """Parse every whole record in `data`; the unparsed rest is returned."""
        position, size = 0, len(data)
        record = _RECORD.match
        while True:
            plain = record(data, position)
            if plain is None:  # another kind of object, a tag in another form, or a part
                position = self._parse_other(data, position)
                if position < 0:
                    return data[-position - 1 :]
                continue
            start = plain.end(2) + 1
            end = start + int(plain[2])
            if end >= size:
                return data[position:]
            if plain.end() > end or data.find(b"\0", start, end) >= 0:
                position = self._parse_other(data, position)
                continue
            oid = plain[1].decode("ascii")
            self._pending.discard(oid)
            known, row = plain_row(plain.groups()[2:], data[plain.end() : end])
            if known:
                self._rows[oid] = row
            position = end + 1  # the record's closing newline

    def _parse_other(self, data: bytes, position: int) -> int:
        """Parse the record at `position`: the position after it, or -1 - position when it
        is not whole yet."""
        newline = data.find(b"\n", position)
        if newline < 0:
            return -1 - position
        header = data[position:newline].split(b" ")
        if len(header) != 3:  # `<oid> missing`: libgit2 says what is wrong
            self._pending.discard(header[0].decode("ascii", "replace"))
            return newline + 1
        end = newline + 1 + int(header[2])
        if end >= len(data):
            return -1 - position
        self._answer(header[0].decode("ascii"), header[1], data[newline + 1 : end])
        return end + 1  # the record's closing newline

    def _answer(self, oid: str, kind: bytes, body: bytes) -> None:
        self._pending.discard(oid)
        if kind in _NOT_TAGS:
            self._rows[oid] = None
        elif kind == b"tag":
            known, row = parse_tag_body(body)
            if known:
                self._rows[oid] = row


def _drain(stdout: object, chunks: queue.SimpleQueue[bytes | None]) -> None:
    """Move the child's output into `chunks` as it comes, then None (on end or failure)."""
    fd = stdout.fileno()  # type: ignore[attr-defined]
    try:
        while chunk := os.read(fd, _CHUNK):
            chunks.put(chunk)
    except OSError:
        pass
    finally:
        chunks.put(None)


def streamable(common_dir: str) -> bool:
    """Whether git reads this repository's objects as libgit2 does, without fetching any."""
    if any(os.environ.get(name) for name in _ENV_OBJECT_DIRS):
        return False
    try:
        with open(os.path.join(common_dir, "config"), "rb") as handle:
            config = handle.read().lower()
    except OSError:
        return False
    return b"promisor" not in config and b"partialclone" not in config


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env

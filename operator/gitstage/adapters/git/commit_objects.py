"""The commits of a batch of versions, and whether artifacts.yaml is in them, read by git.

The enrichment step reads each version's commit and looks for artifacts.yaml in its tree. On a
cold read of a large registry that is some 10,000 commits, and libgit2 takes 60 µs for each
(a commit, a tree, a failed lookup). `git cat-file --batch` reads them all in one run; this
module parses what it sends, exactly as libgit2 reads it, into the object cache's rows, which
the enrichment step then finds there. What is not answered here is read through libgit2 as
before: a commit in another form than the plain one (signed, with an encoding, ...), an object
that is a tag or is missing, and any tree that does hold an entry of that name as a blob (so a
present artifacts.yaml and the checks of its blob always come from libgit2).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import IO

from gitstage.adapters.git.object_cache import Row
from gitstage.adapters.git.raw_tags import PLAIN_SIGNATURE, signature
from gitstage.adapters.git.tag_stream import (
    git_command,
    git_environment,
    stop_processes,
    streamable,
)

# tree, parents, author, committer, a blank line: no other header (encoding, gpgsig, ...).
_PLAIN_COMMIT = re.compile(
    rb"tree ([0-9a-f]{40})\n(?:parent [0-9a-f]{40}\n)*"
    rb"author " + PLAIN_SIGNATURE + rb"committer " + PLAIN_SIGNATURE + rb"\n"
)
_HEADER = re.compile(rb"([0-9a-f]{40}) ([a-z]+) ([0-9]{1,12})\n")
_MISSING = re.compile(rb"[^ \n]+ missing\n")
_NOT_BLOBS = (b"40000", b"160000")  # a directory or a submodule: libgit2's entry is no Blob


@dataclass
class CommitScan:
    """Rows for the object cache: `commits` (sha -> commit row), `trees` ("sha:path" -> None,
    no blob there)."""

    commits: dict[str, Row] = field(default_factory=dict)
    trees: dict[str, None] = field(default_factory=dict)


class CommitRead:
    """One `git cat-file --batch` run over commits and their trees, drained by a thread while
    the caller folds another batch; `result` parses what git sent."""

    def __init__(self, process: subprocess.Popen[bytes], shas: list[str], index: str | None):
        self._process = process
        self._shas = shas
        self._index = index  # the path looked up in each tree, when git is asked for trees
        self._output: list[bytes] = []
        assert process.stdout is not None
        self._reader = threading.Thread(
            target=_read_all, args=(process.stdout, self._output), daemon=True
        )
        self._reader.start()

    @classmethod
    def start(
        cls, git_dir: str, common_dir: str, shas: Collection[str], index_path: str
    ) -> CommitRead | None:
        """Ask git for `shas` and, for a path at the top of the tree, for their trees."""
        if not shas or not streamable(common_dir):
            return None
        nested = "/" in index_path or index_path in ("", ".", "..")
        index = None if nested else index_path
        listing_text = "".join(f"{sha}\n" if nested else f"{sha}\n{sha}^{{tree}}\n" for sha in shas)
        with tempfile.TemporaryFile() as listing:
            listing.write(listing_text.encode("ascii"))
            listing.seek(0)
            try:
                process = subprocess.Popen(
                    git_command(git_dir, "cat-file", "--batch", "--buffer"),
                    stdin=listing,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=git_environment(),
                )
            except OSError:
                return None
        return cls(process, list(shas), index)

    def result(self) -> CommitScan:
        """What git answered (whatever it sent whole, should it have failed)."""
        self._reader.join()
        self.close()
        responses = _responses(b"".join(self._output))
        scan = CommitScan()
        step = 1 if self._index is None else 2
        for number, sha in enumerate(self._shas):
            pair = responses[number * step : number * step + step]
            if len(pair) < step or pair[0] is None or pair[0][1] != b"commit":
                continue
            parsed = parse_commit_body(sha, pair[0][2])
            if parsed is None:
                continue
            scan.commits[sha] = parsed[0]
            if self._index is not None and _no_blob(pair[1], parsed[1], self._index):
                scan.trees[f"{sha}:{self._index}"] = None
        return scan

    def close(self) -> None:
        """Stop git if it is still reading, and reap it (again: a no-op)."""
        stop_processes([self._process])
        self._reader.join()
        assert self._process.stdout is not None
        self._process.stdout.close()


def _no_blob(response: _Object | None, tree_id: str, index: str) -> bool:
    """Whether the tree git sent is the commit's, with no blob named `index` in it."""
    if response is None or response[1] != b"tree" or response[0] != tree_id:
        return False
    return not holds_blob(response[2], index.encode("utf-8", "surrogateescape"))


def read_commits(
    git_dir: str, common_dir: str, shas: Collection[str], index_path: str
) -> CommitScan:
    """What git can answer of `shas`' commits and of `index_path` in their trees."""
    read = CommitRead.start(git_dir, common_dir, shas, index_path)
    return CommitScan() if read is None else read.result()


def parse_commit_body(oid: str, body: bytes) -> tuple[Row, str] | None:
    """(row, tree id) of commit `oid` from its text, as libgit2 reads it; None when libgit2
    must read it (another form, NUL bytes, a message it would strip, text not UTF-8)."""
    plain = _PLAIN_COMMIT.match(body)
    if plain is None or b"\0" in body or body[plain.end() : plain.end() + 1] == b"\n":
        return None
    try:
        author, author_email, _, _ = signature(plain.groups()[1:7])
        committer, committer_email, seconds, offset = signature(plain.groups()[7:13])
        message = body[plain.end() :].decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return None
    row = (oid, seconds, offset, message, author, author_email, committer, committer_email)
    return row, plain[1].decode("ascii")


def holds_blob(tree: bytes, name: bytes) -> bool:
    """Whether a tree object's entry `name` could be a blob (True when unsure: libgit2 then
    reads it); False only for no such entry, a directory or a submodule."""
    position = 0
    while position < len(tree):
        space = tree.find(b" ", position)
        nul = tree.find(b"\0", space + 1)
        if space < 0 or nul < 0:
            return True  # not a tree git wrote
        if tree[space + 1 : nul] == name:
            return tree[position:space] not in _NOT_BLOBS
        position = nul + 21
    return False


_Object = tuple[str, bytes, bytes]  # object id, type, content


def _responses(out: bytes) -> list[_Object | None]:
    """git's answers in the order of the requests: an object, or None (missing); the list
    stops at the first answer that is not whole (a git that failed)."""
    responses: list[_Object | None] = []
    position = 0
    while position < len(out):
        header = _HEADER.match(out, position)
        if header is None:
            missing = _MISSING.match(out, position)
            if missing is None:
                break
            responses.append(None)
            position = missing.end()
            continue
        start = header.end()
        end = start + int(header[3])
        if end >= len(out):
            break
        responses.append((header[1].decode("ascii"), header[2], out[start:end]))
        position = end + 1
    return responses


def _read_all(stdout: IO[bytes], output: list[bytes]) -> None:
    with contextlib.suppress(OSError):
        while chunk := os.read(stdout.fileno(), 1 << 20):
            output.append(chunk)

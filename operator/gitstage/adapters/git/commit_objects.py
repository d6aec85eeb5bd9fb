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

import re
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field

from gitstage.adapters.git.object_cache import Row
from gitstage.adapters.git.raw_tags import PLAIN_SIGNATURE, signature
from gitstage.adapters.git.tag_stream import git_command, git_environment, streamable

# tree, parents, author, committer, a blank line: no other header (encoding, gpgsig, ...).
_PLAIN_COMMIT = re.compile(
    rb"tree ([0-9a-f]{40})\n(?:parent [0-9a-f]{40}\n)*"
    rb"author " + PLAIN_SIGNATURE + rb"committer " + PLAIN_SIGNATURE + rb"\n"
)
_HEADER = re.compile(rb"([0-9a-f]{40}) ([a-z]+) ([0-9]{1,12})\n")
_MISSING = re.compile(rb"[0-9a-f]{40} missing\n")
_NOT_BLOBS = (b"40000", b"160000")  # a directory or a submodule: libgit2's entry is no Blob


@dataclass
class CommitScan:
    """Rows for the object cache: `commits` (sha -> commit row), `trees` ("sha:path" -> None,
    no blob there)."""

    commits: dict[str, Row] = field(default_factory=dict)
    trees: dict[str, None] = field(default_factory=dict)


def read_commits(
    git_dir: str, common_dir: str, shas: Collection[str], index_path: str
) -> CommitScan:
    """What git can answer of `shas`' commits and of `index_path` in their trees."""
    scan = CommitScan()
    if not shas or not streamable(common_dir):
        return scan
    trees: dict[str, str] = {}  # sha -> its tree
    for oid, kind, body in _objects(git_dir, shas):
        if kind == b"commit":
            parsed = parse_commit_body(oid, body)
            if parsed is not None:
                scan.commits[oid], trees[oid] = parsed
    if "/" in index_path or index_path in ("", ".", ".."):
        return scan  # a nested path: libgit2 walks it
    name = index_path.encode("utf-8", "surrogateescape")
    without = {
        oid
        for oid, kind, body in _objects(git_dir, set(trees.values()))
        if kind == b"tree" and not holds_blob(body, name)
    }
    scan.trees = {f"{sha}:{index_path}": None for sha, tree in trees.items() if tree in without}
    return scan


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


def _objects(git_dir: str, oids: Collection[str]) -> list[tuple[str, bytes, bytes]]:
    """(object id, type, content) of the objects of `oids` git has; [] if git fails."""
    with tempfile.TemporaryFile() as listing:
        listing.write("".join(f"{oid}\n" for oid in oids).encode("ascii"))
        listing.seek(0)
        try:
            out = subprocess.run(
                git_command(git_dir, "cat-file", "--batch", "--buffer"),
                stdin=listing,
                capture_output=True,
                check=False,
                env=git_environment(),
            ).stdout
        except OSError:
            return []
    objects = []
    position = 0
    while position < len(out):
        header = _HEADER.match(out, position)
        if header is None:  # `<oid> missing`, or the end of what a failing git sent
            missing = _MISSING.match(out, position)
            if missing is None:
                break
            position = missing.end()
            continue
        start = header.end()
        end = start + int(header[3])
        if end >= len(out):
            break
        objects.append((header[1].decode("ascii"), header[2], out[start:end]))
        position = end + 1
    return objects

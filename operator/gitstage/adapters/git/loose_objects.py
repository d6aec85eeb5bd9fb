"""Annotated tags read straight from loose object files, without loading libgit2.

A tag just created by `git tag -a` (or fetched in a small push) is a loose object: a zlib
stream of `tag <size>\\0` and the tag's text. Reading it here saves importing pygit2 (about
0.1 s) on the commonest incremental read, one new stage tag. Anything unusual (a packed or
missing object, another object directory, a tag raw_tags.py does not parse) answers None, and
the caller reads the object through libgit2 as before.
"""

from __future__ import annotations

import os
import zlib

from gitstage.adapters.git.object_cache import Row
from gitstage.adapters.git.raw_tags import parse_tag_body

MAX_LOOSE_TAG = 1 << 20  # a tag object larger than this is read by libgit2


def loose_tag_row(common_dir: str, oid: str) -> tuple[bool, Row]:
    """(True, row) for a loose object this parser understands (row None when it is not an
    annotated tag with a tagger); (False, None) when libgit2 must read it."""
    if os.environ.get("GIT_OBJECT_DIRECTORY") or len(oid) != 40:
        return False, None
    path = os.path.join(common_dir, "objects", oid[:2], oid[2:])
    try:
        with open(path, "rb") as handle:
            data = zlib.decompressobj().decompress(handle.read(), MAX_LOOSE_TAG + 64)
    except (OSError, zlib.error):
        return False, None
    kind, _, rest = data.partition(b" ")
    if kind in (b"commit", b"tree", b"blob"):
        return True, None  # a lightweight tag names one of these: GTO ignores it
    if kind != b"tag":
        return False, None
    size, nul, body = rest.partition(b"\0")
    if not nul or not size.isdigit() or int(size) != len(body):
        return False, None
    return parse_tag_body(body)

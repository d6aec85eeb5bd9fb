"""Annotated tags read straight from loose object files, without loading libgit2.

A tag just created by `git tag -a` (or fetched in a small push) is a loose object: a zlib
stream of `tag <size>\\0` and the tag's text. Reading it here saves importing pygit2 (about
0.1 s) on the commonest incremental read, one new stage tag. Anything unusual (a packed or
missing object, another object directory, a header this parser does not know, text that is not
UTF-8) answers None, and the caller reads the object through libgit2 as before.
"""

from __future__ import annotations

import os
import re
import zlib

from gitstage.adapters.git.object_cache import Row

MAX_LOOSE_TAG = 1 << 20  # a tag object larger than this is read by libgit2
_TAGGER = re.compile(
    r"^(?P<name>[^<>\n]*?) <(?P<email>[^<>\n]*)> (?P<time>\d+) (?P<zone>[+-]\d{4})$"
)
_HEADERS = ("object", "type", "tag", "tagger")


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
    return _parse_tag(body)


def _parse_tag(body: bytes) -> tuple[bool, Row]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False, None
    head, blank, message = text.partition("\n\n")
    fields: dict[str, str] = {}
    for line in head.split("\n"):
        key, _, value = line.partition(" ")
        if key not in _HEADERS or key in fields:
            return False, None  # gpgsig, encoding or anything new: libgit2 knows better
        fields[key] = value
    if "tagger" not in fields:
        return (True, None) if "object" in fields else (False, None)
    tagger = _TAGGER.match(fields["tagger"])
    if tagger is None or "object" not in fields or not blank:
        return False, None
    if tagger["name"] != tagger["name"].strip() or tagger["email"] != tagger["email"].strip():
        return False, None  # libgit2 trims these: leave the odd ones to it
    zone = tagger["zone"]
    minutes = int(zone[1:3]) * 60 + int(zone[3:5])
    offset = (-minutes if zone[0] == "-" else minutes) * 60
    row = (
        fields["object"],
        tagger["name"],
        tagger["email"],
        int(tagger["time"]),
        offset,
        message,
    )
    return True, row

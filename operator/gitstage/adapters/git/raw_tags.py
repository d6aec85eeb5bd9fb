"""A tag object's raw text parsed into an object-cache row, as the reader's libgit2 path reads it.

Shared by the loose-object reader (loose_objects.py) and the `git cat-file` stream
(tag_stream.py). Only the plain form git writes is parsed: the headers `object`, `type`, `tag`
and `tagger`, in that order, each once, in UTF-8 without NUL bytes. Anything else answers
(False, None) and the caller asks libgit2 (reader.py), so a row from here always equals that
path's. The cases where libgit2 is lenient in its own way are deferred too: names it trims,
NUL bytes (its C strings end there). A tagger's time zone is read as GTO reads it, its digits
as hours and minutes whatever they say (libgit2 takes hours over 14 or minutes over 59 for UTC;
reader.py corrects that); a commit's zone as libgit2 and GTO's commit reader both do.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gitstage.adapters.git.object_cache import Row

_OBJECT_TYPES = frozenset(("commit", "tree", "blob", "tag"))
# The plain form in one match (ASCII digits, no NUL, no `<`/`>` inside name or email), its
# seven groups those of `plain_row`; the message is what follows the blank line.
# A signature libgit2 reads as written: name, email, seconds, zone sign, hours, minutes.
PLAIN_SIGNATURE = rb"([^<>\n\0]*?) <([^<>\n\0]*)> ([0-9]{1,18}) ([+-])([0-9]{2})([0-9]{2})\n"
PLAIN_TAG = (
    rb"object ([0-9a-f]{40})\ntype (?:commit|tree|blob|tag)\ntag [^\n]*\n"
    rb"tagger " + PLAIN_SIGNATURE + rb"\n"
)
_PLAIN = re.compile(PLAIN_TAG)
_HEX40 = re.compile(r"[0-9a-f]{40}")
_MAX_ZONE_HOURS = 14  # libgit2 reads a larger offset as UTC
_MAX_ZONE_MINUTES = 59


def parse_tag_body(body: bytes) -> tuple[bool, Row]:
    """(True, row) for a tag object's text this parser understands (row None for a tag
    without a tagger); (False, None) when libgit2 must read it."""
    if b"\0" in body:
        return False, None
    plain = _PLAIN.match(body)
    if plain is None:
        return _parse_other(body)
    return plain_row(plain.groups(), body[plain.end() :])


def plain_row(fields: tuple[bytes, ...], message: bytes) -> tuple[bool, Row]:
    """The row of a tag in the plain form: PLAIN_TAG's groups and the message (no NUL)."""
    try:
        name, email, seconds, offset = signature(fields[1:], zone=zone_as_written)
        row = (fields[0].decode("ascii"), name, email, seconds, offset, message.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False, None
    return True, row


def signature(
    fields: tuple[bytes, ...], zone: Callable[[bytes, int, int], int] | None = None
) -> tuple[str, str, int, int]:
    """(name, email, seconds, offset seconds) from PLAIN_SIGNATURE's groups; ValueError (or
    UnicodeDecodeError) for what libgit2 reads in its own way. `zone`: how the time zone's
    sign, hours and minutes become seconds (default: as libgit2 reads them, or ValueError)."""
    name, email, seconds, sign, hours, minutes = fields
    text_name, text_email = name.decode("utf-8"), email.decode("utf-8")
    if text_name != text_name.strip() or text_email != text_email.strip():
        raise ValueError("libgit2 trims these")
    offset = (zone or _libgit2_zone)(sign, int(hours), int(minutes))
    return text_name, text_email, int(seconds), offset


def zone_as_written(sign: bytes, hours: int, minutes: int) -> int:
    """GTO's reading of a tagger's zone (GitPython's and dulwich's): the digits as they are, so
    `+1500` is 15 hours (and `+2400`, a day, fails in GTO as in gitstage's state)."""
    seconds = (hours * 60 + minutes) * 60
    return -seconds if sign == b"-" else seconds


def _libgit2_zone(sign: bytes, hours: int, minutes: int) -> int:
    if hours > _MAX_ZONE_HOURS or minutes > _MAX_ZONE_MINUTES:
        raise ValueError("a time zone libgit2 reads as UTC")
    return zone_as_written(sign, hours, minutes)


_TAGGER_ZONE = re.compile(rb"\ntagger [^\n]* ([+-])([0-9]{2})([0-9]{2})\n")


def tagger_zone_as_written(raw: bytes) -> int | None:
    """The tagger's zone in a tag object's raw text, as GTO reads it; None without one in the
    `+HHMM` form (then libgit2's reading stands)."""
    header = raw.partition(b"\n\n")[0] + b"\n"
    found = _TAGGER_ZONE.search(b"\n" + header)
    if found is None:
        return None
    return zone_as_written(found[1], int(found[2]), int(found[3]))


def _parse_other(body: bytes) -> tuple[bool, Row]:
    """A tag without a tagger is GTO's to ignore (row None); any other form is libgit2's."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False, None
    head, blank, _ = text.partition("\n\n")
    if not blank:
        return False, None  # no message: libgit2 reads it in its own way
    lines = [line.partition(" ") for line in head.split("\n")]
    if [key for key, _, _ in lines] != ["object", "type", "tag"]:
        return False, None  # a tagger in an odd form, or anything new: libgit2 knows better
    if _HEX40.fullmatch(lines[0][2]) is None or lines[1][2] not in _OBJECT_TYPES:
        return False, None
    return True, None

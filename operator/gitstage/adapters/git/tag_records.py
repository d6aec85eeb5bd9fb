"""`git cat-file --batch` output parsed into tag rows: in a child interpreter, on the second core.

Parsing 120,000 tag records costs the interpreter some 0.6 s, the same whichever thread does it
(the GIL). So tag_stream.py pipes git's output into `python -m gitstage.adapters.git.tag_records`,
which parses it with raw_tags.py and sends back frames: a 4-byte length, then `marshal` data
`(rows, done)`, where `rows` maps object ids to rows and `done` lists every object id answered
(parsed, deferred to libgit2 or missing). Loading a frame costs a tenth of parsing its records.
"""

from __future__ import annotations

import marshal
import os
import re
import sys

from gitstage.adapters.git.object_cache import Row
from gitstage.adapters.git.raw_tags import PLAIN_TAG, parse_tag_body, plain_row

FRAME_RECORDS = 4_000  # records per frame: the first batch of the fold waits for a few only
LENGTH = 4
_CHUNK = 1 << 20
# A tag record in the plain form: object id, size, then PLAIN_TAG's groups.
_RECORD = re.compile(rb"([0-9a-f]{40}) tag ([0-9]{1,12})\n" + PLAIN_TAG)
_NOT_TAGS = frozenset((b"commit", b"tree", b"blob"))  # lightweight tags: GTO ignores them


class RecordParser:
    """Records fed in pieces of any size: `rows` and `done` grow as whole records come in."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.done: list[str] = []
        self._rest = b""
        self._strings: dict[str, str] = {}

    def feed(self, data: bytes) -> None:
        self._rest = self._parse(self._rest + data)

    @property
    def whole(self) -> bool:
        """No part of a record is waiting for the rest."""
        return not self._rest

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
            self.done.append(oid)
            known, row = plain_row(plain.groups()[2:], data[plain.end() : end])
            if known:
                self.rows[oid] = self._shared(row)
            position = end + 1  # the record's closing newline

    def _shared(self, row: Row) -> Row:
        """The row with its texts shared with earlier rows' equal ones: marshal then writes
        a reference, and the parent loads one object where it would have built many."""
        strings = self._strings
        target, name, email, seconds, offset, message = row
        target, name, email = (
            strings.setdefault(target, target),
            strings.setdefault(name, name),
            strings.setdefault(email, email),
        )
        return (target, name, email, seconds, offset, strings.setdefault(message, message))

    def _parse_other(self, data: bytes, position: int) -> int:
        """Parse the record at `position`: the position after it, or -1 - position when it
        is not whole yet."""
        newline = data.find(b"\n", position)
        if newline < 0:
            return -1 - position
        header = data[position:newline].split(b" ")
        oid = header[0].decode("ascii")
        if len(header) != 3:  # `<oid> missing`: libgit2 says what is wrong
            self.done.append(oid)
            return newline + 1
        end = newline + 1 + int(header[2])
        if end >= len(data):
            return -1 - position
        self.done.append(oid)
        if header[1] in _NOT_TAGS:
            self.rows[oid] = None
        elif header[1] == b"tag":
            known, row = parse_tag_body(data[newline + 1 : end])
            if known:
                self.rows[oid] = row
        return end + 1  # the record's closing newline

    def frame(self) -> bytes:
        """The rows and answers parsed since the last frame, as one frame."""
        data = marshal.dumps((self.rows, self.done))
        self.rows, self.done = {}, []
        return len(data).to_bytes(LENGTH, "big") + data


def main() -> None:
    """Parse git's output from stdin into frames on stdout; stop at the first malformed
    record (the parent leaves what is unanswered to libgit2)."""
    parser = RecordParser()
    out = sys.stdout.buffer
    try:
        while chunk := os.read(0, _CHUNK):
            parser.feed(chunk)
            if len(parser.done) >= FRAME_RECORDS:
                out.write(parser.frame())
                out.flush()
    except (ValueError, UnicodeDecodeError):
        pass  # not git's format: the records before it are whole
    out.write(parser.frame())
    out.flush()


if __name__ == "__main__":
    main()

"""Tagger dates as git accepts them in GIT_COMMITTER_DATE: raw `[@]EPOCH [+-]HHMM` or ISO 8601."""

from __future__ import annotations

import re
from datetime import datetime

from gitstage.domain.registry.events import Instant

_RAW_RE = re.compile(r"^@?(?P<seconds>\d+)(?:\s+(?P<sign>[+-])(?P<hours>\d\d)(?P<minutes>\d\d))?$")


class InvalidDateError(ValueError):
    def __init__(self, text: str, problem: str | None = None) -> None:
        usage = "use '@EPOCH +HHMM' or ISO 8601 with an offset (2024-01-31T12:00:00+01:00)"
        super().__init__(f"invalid date {text!r}: {problem or usage}")


def parse_git_date(text: str) -> Instant:
    """An absolute instant with the offset it was written in (UTC when the raw form has none)."""
    return _readable(_parse(text.strip(), text), text)


def _readable(instant: Instant, text: str) -> Instant:
    """Refuse what GTO (and gitstage's reader) could not read back: a tag dated so would break
    every later command on the registry."""
    if instant.problem is not None:
        raise InvalidDateError(text, instant.problem)
    return instant


def _parse(stripped: str, text: str) -> Instant:
    raw = _RAW_RE.match(stripped)
    if raw is not None:
        offset = 0
        if raw["sign"]:
            if int(raw["minutes"]) >= 60:
                raise InvalidDateError(text, "the offset's minutes must be under 60")
            offset = (int(raw["hours"]) * 60 + int(raw["minutes"])) * 60
            offset = -offset if raw["sign"] == "-" else offset
        return Instant(int(raw["seconds"]), offset)
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise InvalidDateError(text) from None
    utcoffset = parsed.utcoffset()
    if utcoffset is None:
        raise InvalidDateError(text)
    return Instant(int(parsed.timestamp()), int(utcoffset.total_seconds()))


def format_offset(offset_seconds: int) -> str:
    """Git's `+HHMM` for an offset in seconds."""
    sign = "-" if offset_seconds < 0 else "+"
    minutes = abs(offset_seconds) // 60
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"

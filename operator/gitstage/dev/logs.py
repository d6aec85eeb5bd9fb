"""The part of a component's log that an error message quotes."""

from __future__ import annotations

import re

_ERROR_LINE = re.compile(r"^[EF]\d{4} |^E: |error|fatal|panic|flag provided", re.IGNORECASE)


def log_excerpt(lines: list[str], last: int = 8, errors: int = 3) -> list[str]:
    """A log's last lines, preceded by its last error lines when those scrolled out of them."""
    tail = lines[-last:]
    earlier = [line for line in lines[:-last] if _ERROR_LINE.search(line)][-errors:]
    return [*earlier, "...", *tail] if earlier else tail

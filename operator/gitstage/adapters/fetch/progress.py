"""A one-line progress meter on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_MB = 1024 * 1024
_INTERVAL = 0.2


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.total = total
        self.done = 0
        self._shown = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self._shown >= _INTERVAL:
            self._shown = now
            self._draw()

    def _draw(self) -> None:
        done = self.done / _MB
        if self.total:
            percent = 100 * self.done / self.total
            text = f"{self.label}: {done:.1f}/{self.total / _MB:.1f} MB ({percent:.0f}%)"
        else:
            text = f"{self.label}: {done:.1f} MB"
        self.stream.write(f"\r{text}\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

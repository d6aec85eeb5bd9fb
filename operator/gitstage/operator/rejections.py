"""Rejected webhook requests in the log: the first few of each window one by one, then a count.

A flood of bad requests (a scanner, a slowloris, a misconfigured forge retrying) must not write a
log line each: that was tens of thousands of lines per attack (issue 16). Each window of
`window` seconds logs its first `burst` rejections as they come, counts the rest by reason and
logs one summary line when the window is over (`flush`, called on a timer and by `note`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

WINDOW = 60.0
BURST = 10


class RejectionLog:
    """Not thread-safe: call from the webhook server's event loop only."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        window: float = WINDOW,
        burst: int = BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self.window = window
        self._burst = burst
        self._clock = clock
        self._started = clock()
        self._logged = 0
        self._quiet: Counter[str] = Counter()

    def note(self, reason: str, message: str) -> None:
        """One rejection; `message` is one line without secrets."""
        self.flush()
        if self._logged < self._burst:
            self._logged += 1
            self._logger.info("webhook request rejected (%s): %s", reason, message)
        else:
            self._quiet[reason] += 1

    def flush(self, *, final: bool = False) -> None:
        """When the window is over (or `final`): log the count of what it did not log."""
        now = self._clock()
        elapsed = now - self._started
        if elapsed < self.window and not final:
            return
        if self._quiet:
            counts = ", ".join(f"{reason} {count}" for reason, count in self._quiet.most_common())
            self._logger.warning(
                "webhook: %d more requests rejected in the last %.0f s (%s)",
                self._quiet.total(),
                elapsed,
                counts,
            )
        self._started, self._logged = now, 0
        self._quiet.clear()


class ToRejections(logging.Handler):
    """aiohttp's server logger, into the rejection log: one line, no traceback.

    aiohttp logs each request it cannot parse with `logger.exception` (a traceback per bad
    request); give its server a `logging.Logger` with only this handler.
    """

    def __init__(self, rejections: RejectionLog) -> None:
        super().__init__()
        self._rejections = rejections

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        text = getattr(error, "message", None) or str(error or record.getMessage())
        shown = one_line(str(text)) or type(error).__name__
        # aiohttp's other exception log is a handler that raised: a bug of ours, not the caller's.
        reason = "internal_error" if record.msg == "Unhandled exception" else "bad_http"
        self._rejections.note(reason, shown)


def one_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of `text`, escaped for a log line and bounded ("" if none)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return repr(lines[0][:limit].rstrip(" :"))[1:-1] if lines else ""


def server_logger(name: str, rejections: RejectionLog) -> logging.Logger:
    """A logger outside the logging tree (no propagation) that feeds `rejections`."""
    logger = logging.Logger(name)
    logger.addHandler(ToRejections(rejections))
    return logger

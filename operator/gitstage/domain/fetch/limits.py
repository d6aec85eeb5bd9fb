"""How long a fetch may take: an overall deadline, and a stall timeout (no byte for so long).

A server that trickles a byte now and then never trips a stall timeout, and one that sends
nothing at all would hold a fetch forever without one: the deadline bounds the first, the stall
timeout ends the second early. Both apply to git transfers and DVC downloads alike. The clock is
`time.monotonic` (no I/O: reading it changes nothing).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gitstage.domain.fetch.errors import TransportError

DEFAULT_TIMEOUT_SECONDS = 3600.0  # an hour: a multi-gigabyte model on a slow link
DEFAULT_STALL_SECONDS = 60.0
# A week: longer is a mistake (or `inf`), and subprocess and curl timeouts need finite numbers.
MAX_SECONDS = 7 * 24 * 3600.0


def valid_seconds(value: float) -> bool:
    """A timeout a fetch can keep: positive, finite (not NaN or inf) and at most MAX_SECONDS."""
    return math.isfinite(value) and 0 < value <= MAX_SECONDS


class Deadline:
    """Started when a fetch starts; `timeout` and `stall` in seconds."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        stall: float = DEFAULT_STALL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (valid_seconds(timeout) and valid_seconds(stall)):
            raise ValueError(
                f"a fetch's timeout and stall timeout must be positive and at most {MAX_SECONDS:g}"
            )
        self.timeout = timeout
        self.stall = stall
        self._clock = clock
        self.ends_at = clock() + timeout

    @property
    def expired(self) -> bool:
        return self._clock() >= self.ends_at

    def remaining(self, what: str) -> float:
        """Seconds left; TransportError once there are none."""
        left = self.ends_at - self._clock()
        if left <= 0:
            raise self.expired_error(what)
        return left

    def wait_limit(self, what: str) -> float:
        """How long one blocking wait for data may last: the stall timeout, or less near the end."""
        return min(self.stall, self.remaining(what))

    def expired_error(self, what: str) -> TransportError:
        return TransportError(f"{what}: the fetch ran past its deadline of {self.timeout:g}s")

    def stalled_error(self, what: str) -> TransportError:
        return TransportError(f"{what}: no data for {self.stall:g}s (stalled)")


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch may take: bytes written (None: no limit), seconds in all, seconds without
    data."""

    max_bytes: int | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    stall_timeout: float = DEFAULT_STALL_SECONDS

    def deadline(self) -> Deadline:
        """Started now."""
        return Deadline(self.timeout, self.stall_timeout)


NO_LIMITS = FetchLimits()  # the defaults: no size limit, the default timeouts

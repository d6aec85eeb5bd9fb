"""Hand memory freed after a burst back to the system.

A thousand registries starting, or a large registry read, leave glibc's heap with free chunks
between live ones; glibc returns only the top of the heap by itself, so the resident size stays
at the burst's peak. `malloc_trim` releases every free page. It runs in a thread (it takes the
allocator's locks, not the GIL) once a TRIM_INTERVAL; on another C library nothing runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable

TRIM_INTERVAL = 60.0  # seconds between two trims

log = logging.getLogger(__name__)


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim(pad)`, or None without it."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


async def trim_periodically(interval: float = TRIM_INTERVAL) -> None:
    """Until cancelled: every `interval` seconds, give free heap pages back."""
    trim = malloc_trim()
    if trim is None:
        log.debug("no malloc_trim in this C library: freed memory stays with the process")
        return
    while True:
        await asyncio.sleep(interval)  # a period, not a wait for some condition
        await asyncio.to_thread(trim, 0)

"""Pause the cyclic garbage collector while a registry is read and viewed.

A read allocates a few objects per tag (hundreds of thousands on a large registry) and frees
them by reference counting; the collector would only rescan those young objects again and again
(a third of a large read's time, measured). It is re-enabled on exit, and only if it was enabled
on entry, so nested or concurrent pauses end with the collector as they found it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect_before_keeping() -> None:
    """Collect the cyclic garbage alive now, before a read whose state will be frozen.

    `gc.freeze` moves every tracked object out of reach, garbage cycles included, and frozen
    cycles are never collected: in the operator, whose event loop leaves cycles behind (API
    errors' tracebacks with the responses in their frames, kopf's and aiohttp's bookkeeping),
    each read froze those of the moment for good. What has been frozen already is not walked
    again, so this costs a collection of what was made since the last read.
    """
    gc.collect()


def keep_out_of_collections() -> None:
    """Move every object alive now out of the collector's reach (`gc.freeze`).

    For long-lived processes after a read whose state they keep: a full collection walks every
    tracked object while holding the GIL (0.47 s over one 120,000-tag registry's state), which
    would stall the operator's event loop whichever thread triggered it. Frozen objects are
    still freed by reference counting; the states hold no reference cycles.
    """
    gc.freeze()

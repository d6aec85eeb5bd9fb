"""kopf's defaults this operator does without, each a cost at a thousand registries.

Its diff base: kopf builds every watched object's essence on each of its events (a deep copy
of the body) to diff it for `on.create`/`on.update` handlers. Ours react to raw events only,
so the copies of a thousand registries', Deployments' and pods' bodies during a rollout were
pure waste: a fifth of the operator's event loop (benchmarks/scale.py, py-spy).

Its INFO line per raw event handled: eleven thousand lines in that rollout, and formatting
them took as much of the loop again as decoding the watch streams did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """An empty essence for every object: nothing is copied, nothing stored, nothing diffed."""

    def build(self, *, body: Any, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: Any) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: Any, patch: Any, essence: kopf.BodyEssence) -> None:
        return None


class RoutineSuccesses(logging.Filter):
    """Drops kopf's success line for the given handlers; their failures still log."""

    def __init__(self, handlers: Iterable[Callable[..., object]]) -> None:
        super().__init__()
        # kopf names a module-level handler by its qualified name: "Handler 'name' succeeded."
        self.messages = frozenset(f"Handler {h.__qualname__!r} succeeded." for h in handlers)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.INFO or record.getMessage() not in self.messages


def quiet_routine_successes(
    logger: logging.Logger, handlers: Iterable[Callable[..., object]]
) -> None:
    """Filter `logger` (kopf.objects) once: a later call replaces the handlers filtered."""
    for earlier in [f for f in logger.filters if isinstance(f, RoutineSuccesses)]:
        logger.removeFilter(earlier)
    logger.addFilter(RoutineSuccesses(handlers))

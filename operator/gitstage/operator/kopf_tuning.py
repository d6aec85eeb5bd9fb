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
from collections.abc import Iterable
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


EVENT_HANDLERS = ("registry_event", "deployment_changed", "pod_changed")
_ROUTINE = frozenset(f"Handler {name!r} succeeded." for name in EVENT_HANDLERS)


class RoutineSuccesses(logging.Filter):
    """Drops kopf's success line for the raw event handlers; their failures still log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.INFO or record.getMessage() not in _ROUTINE


def quiet_routine_successes(logger: logging.Logger) -> None:
    if not any(isinstance(f, RoutineSuccesses) for f in logger.filters):
        logger.addFilter(RoutineSuccesses())

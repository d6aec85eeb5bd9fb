"""kopf's diff base switched off, and its per-event success lines dropped (failures kept)."""

from __future__ import annotations

import logging

import pytest

from gitstage.operator import handlers
from gitstage.operator.kopf_tuning import NoDiffBase, quiet_routine_successes

BODY = {"metadata": {"name": "churn", "annotations": {"a": "b"}}, "spec": {"x": [1, 2]}}


def test_no_diff_base_copies_and_stores_nothing() -> None:
    storage = NoDiffBase()
    assert storage.build(body=BODY) == {}
    assert storage.fetch(body=BODY) is None
    patch: dict[str, object] = {}
    storage.store(body=BODY, patch=patch, essence=storage.build(body=BODY))
    assert patch == {}


@pytest.mark.parametrize(
    ("level", "message", "kept"),
    [
        (logging.INFO, "Handler 'registry_event' succeeded.", False),
        (logging.INFO, "Handler 'deployment_changed' succeeded.", False),
        (logging.INFO, "Handler 'pod_changed' succeeded.", False),
        (logging.ERROR, "Handler 'registry_event' failed with an exception. Will ignore.", True),
        (logging.INFO, "Handler 'configure' succeeded.", True),
        (logging.INFO, "Handler 'registry_event_extra' succeeded.", True),
    ],
)
def test_only_routine_event_successes_are_dropped(
    level: int, message: str, kept: bool, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test.kopf.objects")
    raw_event_handlers = (
        handlers.registry_event,
        handlers.deployment_changed,
        handlers.pod_changed,
    )
    quiet_routine_successes(logger, raw_event_handlers)
    quiet_routine_successes(logger, raw_event_handlers)  # one filter, not two
    assert len(logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.log(level, message)
    assert [r.getMessage() for r in caplog.records] == ([message] if kept else [])

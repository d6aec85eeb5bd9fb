"""Workers live as long as their ModelRegistry's watch events say, and pod or Deployment events
wake exactly the worker whose registry labelled the object.

The workers here read a registry that is gone (`read_registry` answers None), so each reconcile
ends at once and the worker waits for news: what is tested is the supervision, not a reconcile.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gitstage.adapters.kube import registries
from gitstage.operator import handlers
from gitstage.operator.settings import OperatorSettings
from gitstage.workloads.labels import label_value
from gitstage.workloads.render import LABEL_BINDING, LABEL_REGISTRY


class QuietFeed:
    def follow(self, *_: Any) -> None: ...

    def unfollow(self, key: str) -> None: ...

    def request(self, key: str) -> None: ...


@pytest.fixture
def memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    reads: list[str] = []

    def read_registry(namespace: str, name: str) -> None:
        reads.append(f"{namespace}/{name}")

    monkeypatch.setattr(registries, "read_registry", read_registry)
    monkeypatch.setattr(handlers, "WORKERS", {})
    monkeypatch.setattr(handlers, "TASKS", {})
    monkeypatch.setattr(handlers, "OWNERS", {})
    settings = OperatorSettings(fetcher_image="fetcher:1", cache_dir=tmp_path)
    return {"feed": QuietFeed(), "settings": settings, "reads": reads}


async def until(condition: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


def test_a_worker_starts_once_is_woken_by_its_labels_and_stops_on_deletion(
    memo: dict[str, Any],
) -> None:
    async def scenario() -> None:
        reads = memo["reads"]
        handlers.ensure_worker("ml", "Churn:prod", memo)
        handlers.ensure_worker("ml", "Churn:prod", memo)  # a second event: the same worker
        handlers.ensure_worker("ml", "fraud", memo)
        assert set(handlers.WORKERS) == {"ml/Churn:prod", "ml/fraud"}
        await until(lambda: len(reads) == 2, "one reconcile each")
        labels = {LABEL_REGISTRY: label_value("Churn:prod"), LABEL_BINDING: "x"}
        handlers._wake_owner(labels, "ml")  # type: ignore[arg-type]
        await until(lambda: reads.count("ml/Churn:prod") == 2, "the labelled worker woken")
        await until(lambda: not any(w._wakeup.is_set() for w in handlers.WORKERS.values()), "idle")
        handlers._wake_owner(labels, "other")  # type: ignore[arg-type]
        assert not any(w._wakeup.is_set() for w in handlers.WORKERS.values())  # woken at once
        assert reads.count("ml/fraud") == 1
        task = handlers.TASKS["ml/Churn:prod"]
        handlers.stop_worker("ml/Churn:prod")
        await asyncio.wait_for(task, 5)
        assert set(handlers.WORKERS) == {"ml/fraud"}
        assert (("ml", label_value("Churn:prod"))) not in handlers.OWNERS
        await handlers.stop_workers()
        assert handlers.WORKERS == {}
        assert handlers.TASKS == {}
        assert handlers.OWNERS == {}

    asyncio.run(scenario())


def test_a_registry_recreated_while_its_worker_stops_gets_a_new_worker(
    memo: dict[str, Any],
) -> None:
    async def scenario() -> None:
        handlers.ensure_worker("ml", "churn", memo)
        first, first_task = handlers.WORKERS["ml/churn"], handlers.TASKS["ml/churn"]
        handlers.stop_worker("ml/churn")
        handlers.ensure_worker("ml", "churn", memo)  # the ADDED event of the new object
        second = handlers.WORKERS["ml/churn"]
        assert second is not first
        assert not second.stopping
        await asyncio.wait_for(first_task, 5)
        await until(lambda: memo["reads"].count("ml/churn") >= 1, "the new one reconciled")
        assert handlers.WORKERS["ml/churn"] is second  # the old task's exit left it in place
        assert not handlers.TASKS["ml/churn"].done()
        await handlers.stop_workers()

    asyncio.run(scenario())

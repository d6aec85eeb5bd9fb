"""The operator's metrics as Prometheus scrapes them: build info, reconciles, readiness, rollout
states, polls and policy violations, with their labels, no `*_created` series, and series that go
away with their registry or Deployment."""

from __future__ import annotations

import asyncio
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from gitstage import __version__
from gitstage.adapters import metrics
from gitstage.adapters.mirror.poll_types import PollRecord
from gitstage.adapters.registry_metrics import ROLLOUT_STATES
from gitstage.operator import endpoints, handlers, observability
from gitstage.operator.reconcile import Notice, Outcome, Transition
from gitstage.resources import v1alpha1 as v1
from tests.support.exported_metrics import Labels, parse, samples

NAMESPACE = "ns-metrics"
TRANSITION_TIME = "2026-01-01T00:00:00Z"


def ours(name: str, registry: str) -> dict[Labels, float]:
    """The samples of `name` for one registry of the test namespace."""
    return {
        labels: value
        for labels, value in samples(name).items()
        if ("namespace", NAMESPACE) in labels and ("registry", registry) in labels
    }


def status(ready: str, rollouts: dict[str, str]) -> dict[str, Any]:
    """A status as the operator writes it (the model, dumped by alias)."""
    written = v1.ModelRegistryStatus(
        conditions=[
            v1.Condition(
                type="Ready", status=ready, reason="Test", last_transition_time=TRANSITION_TIME
            )
        ],
        deployments=[
            v1.DeploymentState(name=name, artifact="churn", rollout=rollout)
            for name, rollout in rollouts.items()
        ],
    )
    return written.model_dump(by_alias=True, exclude_none=True, mode="json")


def test_the_build_is_described_and_no_created_series_is_exposed() -> None:
    with observability.reconciling(NAMESPACE, "build"):
        pass
    observability.record_poll(PollRecord("https://git.example/build.git", 0.1, "changed", None))
    text = metrics.exposition().decode()
    assert samples("gitstage_build_info") == {
        (("python_version", platform.python_version()), ("version", __version__)): 1.0
    }
    assert ours("gitstage_reconciles_total", "build")
    assert "_created" not in text
    observability.forget(NAMESPACE, "build")


def test_reconciles_are_timed_and_failures_counted_by_reason() -> None:
    # Durations by namespace only (a histogram per registry was most of a large exposition),
    # which other tests share: these four reconciles are what the namespace's figures gain.
    namespace = (("namespace", NAMESPACE),)
    count_before = samples("gitstage_reconcile_duration_seconds_count").get(namespace, 0.0)
    sum_before = samples("gitstage_reconcile_duration_seconds_sum").get(namespace, 0.0)
    with observability.reconciling(NAMESPACE, "timed"):
        time.sleep(0.02)  # the work being timed, not a wait for a condition
    with pytest.raises(ApiException), observability.reconciling(NAMESPACE, "timed"):
        raise ApiException(status=409, reason="Conflict")
    with pytest.raises(ApiException), observability.reconciling(NAMESPACE, "timed"):
        raise ApiException(status=500, reason="Internal Server Error")
    with pytest.raises(ValueError, match="boom"), observability.reconciling(NAMESPACE, "timed"):
        raise ValueError("boom")
    registry = (("namespace", NAMESPACE), ("registry", "timed"))
    assert ours("gitstage_reconciles_total", "timed") == {registry: 4.0}
    count = samples("gitstage_reconcile_duration_seconds_count")[namespace]
    assert count - count_before == 4.0
    assert samples("gitstage_reconcile_duration_seconds_sum")[namespace] - sum_before >= 0.02
    errors = {
        dict(labels)["reason"]: value
        for labels, value in ours("gitstage_reconcile_errors_total", "timed").items()
    }
    assert errors == {"Conflict": 1.0, "InternalServerError": 1.0, "ValueError": 1.0}
    observability.forget(NAMESPACE, "timed")
    assert ours("gitstage_reconciles_total", "timed") == {}
    assert ours("gitstage_reconcile_errors_total", "timed") == {}


def test_readiness_and_rollout_states_follow_the_status_and_go_with_it() -> None:
    observability.record_status(
        NAMESPACE, "ready", status("Unknown", {"churn-prod": "Progressing", "churn-dev": "Held"})
    )
    registry = (("namespace", NAMESPACE), ("registry", "ready"))
    assert ours("gitstage_registry_ready", "ready") == {registry: 0.0}
    assert ours("gitstage_policy_violations_total", "ready") == {registry: 0.0}
    rollout = ours("gitstage_deployment_rollout", "ready")
    current = {dict(key)["deployment"]: dict(key)["state"] for key, on in rollout.items() if on}
    assert current == {"churn-prod": "Progressing", "churn-dev": "Held"}
    assert len(rollout) == 2 * len(ROLLOUT_STATES)  # one-hot, every state

    observability.record_status(NAMESPACE, "ready", status("True", {"churn-prod": "Complete"}))
    assert ours("gitstage_registry_ready", "ready") == {registry: 1.0}
    rollout = ours("gitstage_deployment_rollout", "ready")
    assert {dict(labels)["deployment"] for labels in rollout} == {"churn-prod"}
    assert [dict(labels)["state"] for labels, v in rollout.items() if v] == ["Complete"]

    observability.forget(NAMESPACE, "ready")
    assert ours("gitstage_registry_ready", "ready") == {}
    assert ours("gitstage_policy_violations_total", "ready") == {}
    assert ours("gitstage_deployment_rollout", "ready") == {}


def test_a_registry_without_status_or_with_an_unreadable_one_is_not_ready() -> None:
    observability.record_status(NAMESPACE, "new", None)
    observability.record_status(NAMESPACE, "odd", {"conditions": [{"type": "Ready"}]})
    for registry in ("new", "odd"):
        labels = (("namespace", NAMESPACE), ("registry", registry))
        assert ours("gitstage_registry_ready", registry) == {labels: 0.0}
        observability.forget(NAMESPACE, registry)


def test_the_watch_handler_exports_the_status_and_a_deletion_drops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []  # the worker supervision itself: tests/unit/test_worker_supervision.py
    monkeypatch.setattr(handlers, "ensure_worker", lambda ns, name, _: started.append(name))

    async def event(kind: str, raw_status: dict[str, Any]) -> None:
        body = {"type": kind, "object": {"status": raw_status}}
        await handlers.registry_event(
            name="watched",
            namespace=NAMESPACE,
            annotations={},
            meta={"generation": 1},
            event=body,
            status=raw_status,
            memo={},
        )

    asyncio.run(event("MODIFIED", status("True", {"churn-prod": "Complete"})))
    assert ours("gitstage_registry_ready", "watched") == {
        (("namespace", NAMESPACE), ("registry", "watched")): 1.0
    }
    assert started == ["watched"]
    asyncio.run(event("DELETED", status("True", {"churn-prod": "Complete"})))
    assert started == ["watched"]  # a deletion stops, never starts, a worker
    assert ours("gitstage_registry_ready", "watched") == {}
    assert ours("gitstage_deployment_rollout", "watched") == {}


def test_each_new_policy_violation_is_counted_once() -> None:
    violation = Notice("Warning", "PolicyViolation", "churn-prod: churn#prod#3 breaks rule x")
    rollout = Notice("Normal", "RollingOut", "churn-prod: rolling out")
    observability.record_reconcile(NAMESPACE, "policy", Outcome(notices=[violation, rollout]))
    observability.record_reconcile(NAMESPACE, "policy", Outcome())  # said already: no notice
    observability.record_reconcile(
        NAMESPACE, "policy", Outcome(transitions=[Transition("churn-prod", "RollingOut")])
    )
    registry = (("namespace", NAMESPACE), ("registry", "policy"))
    assert ours("gitstage_policy_violations_total", "policy") == {registry: 1.0}
    observability.forget(NAMESPACE, "policy")
    assert ours("gitstage_policy_violations_total", "policy") == {}
    assert ours("gitstage_rollout_transitions_total", "policy") == {}


def test_the_last_successful_poll_time_ignores_failed_polls() -> None:
    url = "https://git.example.com/metrics/last-poll.git"
    repository = (("repository", url),)
    before = time.time()
    observability.record_poll(PollRecord(url, 0.1, "unchanged", None))
    succeeded = samples("gitstage_last_successful_poll_timestamp_seconds")[repository]
    assert before <= succeeded <= time.time()
    observability.record_poll(PollRecord(url, 0.1, "error", "SourceUnavailable"))
    assert samples("gitstage_last_successful_poll_timestamp_seconds")[repository] == succeeded


def test_the_metrics_listener_serves_the_exposition_and_readiness() -> None:
    async def scrape() -> tuple[int, str, str, int]:
        endpoint = await endpoints.serve("metrics", endpoints.metrics_app(), "127.0.0.1", 0)
        try:
            base = f"http://127.0.0.1:{endpoint.port}"
            async with aiohttp.ClientSession() as session:
                async with session.get(base + "/metrics") as response:
                    body, kind = await response.text(), response.headers["Content-Type"]
                    code = response.status
                async with session.get(base + "/readyz") as ready:
                    return code, kind, body, ready.status
        finally:
            await endpoint.close()

    code, kind, body, ready = asyncio.run(scrape())
    assert (code, ready) == (200, 200)
    assert kind.startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(body)}
    assert {"gitstage_build_info", "process_resident_memory_bytes"} <= names
    assert "_created" not in body


def test_bound_to_the_ipv6_any_address_a_listener_answers_over_ipv6() -> None:
    """The chart's `listenAddress: "::"` (IPv6-only clusters)."""

    async def probe() -> int:
        endpoint = await endpoints.serve("metrics", endpoints.metrics_app(), "::", 0)
        try:
            url = f"http://[::1]:{endpoint.port}/readyz"
            async with aiohttp.ClientSession() as session, session.get(url) as ready:
                return ready.status
        finally:
            await endpoint.close()

    assert asyncio.run(probe()) == 200


def test_a_scrape_renders_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thousand registries' exposition takes a tenth of a second or more: rendered on the loop
    it would stall every worker at each scrape. Here the rendering waits until the loop has
    answered /readyz meanwhile, which it could not do if the rendering held the loop."""
    answered = threading.Event()
    rendered_in: list[str] = []

    def slow_exposition() -> bytes:
        rendered_in.append(threading.current_thread().name)
        answered.wait(timeout=10)
        return b"# rendered\n"

    monkeypatch.setattr(metrics, "exposition", slow_exposition)

    async def scrape_while_probing() -> tuple[str, int]:
        endpoint = await endpoints.serve("metrics", endpoints.metrics_app(), "127.0.0.1", 0)
        try:
            base = f"http://127.0.0.1:{endpoint.port}"
            async with aiohttp.ClientSession() as session:
                scraping = asyncio.create_task(_text(session, base + "/metrics"))
                while not rendered_in:  # the scrape has reached the exposition
                    await asyncio.sleep(0.01)
                async with session.get(base + "/readyz") as ready:
                    status = ready.status
                answered.set()
                return await asyncio.wait_for(scraping, 10), status
        finally:
            await endpoint.close()

    body, ready = asyncio.run(asyncio.wait_for(scrape_while_probing(), 20))
    assert (body, ready) == ("# rendered\n", 200)
    # Its own thread, not the pool the reconciles' API calls fill during a rollout.
    assert [name.split("_")[0] for name in rendered_in] == ["metrics"]


async def _text(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.text()


def test_a_scrape_in_a_thread_sees_whole_records_while_the_loop_updates_them() -> None:
    """/metrics renders in a thread while registries come and go on the loop: every scrape
    parses, and each registry it shows has all of its series."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def scrape_until_stopped() -> None:
        while not stop.is_set():
            try:
                scraped = parse(metrics.exposition().decode())
            except BaseException as error:
                failures.append(error)
                return
            churned = {k for _, k in scraped if ("namespace", "ns-churn") in k}
            ready = {k for k in churned if ("gitstage_registry_ready", k) in scraped}
            counted = {k for k in churned if ("gitstage_reconciles_total", k) in scraped}
            if not ready <= counted:  # a status is recorded after its registry's reconcile
                failures.append(AssertionError(f"{ready - counted} half-exported"))

    scraper = threading.Thread(target=scrape_until_stopped)
    scraper.start()
    try:
        for number in range(300):
            name = f"churn-{number % 20}"
            with observability.reconciling("ns-churn", name):
                pass
            observability.record_status("ns-churn", name, status("True", {"a": "Complete"}))
            if number % 3 == 0:
                observability.forget("ns-churn", name)
    finally:
        stop.set()
        scraper.join(timeout=30)
    for number in range(20):
        observability.forget("ns-churn", f"churn-{number}")
    assert failures == []


def test_a_scrape_answers_while_the_reconciles_fill_their_threads() -> None:
    """During a thousand registries' rollout every thread of the loop's pool waits on the API:
    a scrape that queued there timed out. Here the only pool thread is held until the scrape
    has answered."""
    held = threading.Event()

    async def scrape_while_the_pool_is_busy() -> int:  # the body's length
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        busy = loop.run_in_executor(None, held.wait, 30)
        endpoint = await endpoints.serve("metrics", endpoints.metrics_app(), "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as session:
                status = len(await _text(session, f"http://127.0.0.1:{endpoint.port}/metrics"))
        finally:
            held.set()
            await busy
            await endpoint.close()
        return status

    assert asyncio.run(asyncio.wait_for(scrape_while_the_pool_is_busy(), 20)) > 0

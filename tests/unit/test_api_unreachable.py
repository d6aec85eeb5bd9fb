"""An API server that cannot be reached (restarting, a network cut) is an API error like any
other: one line naming the cause, a retry with backoff, and never the end of a registry's worker
(urllib3's own errors used to escape the worker's handling and end it for good)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube import client as kube_client
from gitstage.adapters.kube import registries, rest
from gitstage.cli.main import cli
from gitstage.operator.settings import OperatorSettings
from gitstage.operator.worker import RETRY_DELAYS, RegistryWorker

TOKEN = "s3cr3t-bearer-token"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    port = _closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        f"users: [{{name: u, user: {{token: {TOKEN}}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u, namespace: ml}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kube_client.api_client.cache_clear()
    yield port
    kube_client.api_client.cache_clear()


def test_a_refused_connection_is_an_api_error_naming_its_cause(unreachable: int) -> None:
    with pytest.raises(ApiException) as raised:
        registries.read_registry("ml", "churn")
    assert raised.value.status == 0
    reason = str(raised.value.reason)
    assert reason.startswith("cannot reach the API server: ")
    assert "Connection refused" in reason
    assert f"port={unreachable}" in reason
    assert "\n" not in reason
    assert TOKEN not in str(raised.value)


def test_a_silent_api_server_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # the kernel completes connections; nothing ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = int(silent.getsockname()[1])
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
            f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.setattr(rest, "TIMEOUT", (1.0, 0.2))
        kube_client.api_client.cache_clear()
        try:
            with pytest.raises(ApiException) as raised:
                registries.read_registry("ml", "churn")
        finally:
            kube_client.api_client.cache_clear()
    assert raised.value.status == 0
    assert str(raised.value.reason).startswith("cannot reach the API server: ")
    assert "timed out" in str(raised.value.reason)


class QuietFeed:
    def follow(self, *_: Any) -> None: ...

    def unfollow(self, key: str) -> None: ...

    def request(self, key: str) -> None: ...


def _worker(tmp_path: Path) -> RegistryWorker:
    settings = OperatorSettings(fetcher_image="fetcher:1", cache_dir=tmp_path)
    return RegistryWorker("ml", "churn", QuietFeed(), settings)


def test_a_worker_backs_off_while_the_api_server_is_unreachable(
    unreachable: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    worker = _worker(tmp_path)

    async def three_reconciles() -> list[float | None]:
        return [await worker._reconcile_safely() for _ in range(3)]

    with caplog.at_level(logging.WARNING, logger="gitstage.operator.worker"):
        delays = asyncio.run(three_reconciles())
    assert delays == list(RETRY_DELAYS[:3])
    lines = [r.getMessage() for r in caplog.records if r.name == "gitstage.operator.worker"]
    assert len(lines) == 3
    assert all("API error 0 cannot reach the API server" in line for line in lines)


def test_an_unexpected_error_is_retried_not_the_end_of_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[object] = [ValueError("no view parses this"), ValueError("again"), None]

    def read_registry(namespace: str, name: str) -> None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer

    monkeypatch.setattr(registries, "read_registry", read_registry)
    worker = _worker(tmp_path)

    async def until_the_registry_is_read_cleanly() -> None:
        task = asyncio.create_task(worker.run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while answers:  # each failure wakes the worker again after its backoff
            assert not task.done(), "the worker ended on an error"
            assert loop.time() < deadline, "the worker did not retry"
            await asyncio.sleep(0.05)
        worker.stop()
        await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.ERROR, logger="gitstage.operator.worker"):
        asyncio.run(until_the_registry_is_read_cleanly())
    failures = [r for r in caplog.records if "reconcile failed: ValueError" in r.getMessage()]
    assert [bool(r.exc_info) for r in failures] == [True, False]  # one traceback a streak


def test_the_cli_says_in_one_line_that_the_api_server_cannot_be_reached(
    unreachable: int,
) -> None:
    result = CliRunner().invoke(cli, ["get", "registries"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "cannot reach the API server" in lines[0]
    assert "Connection refused" in lines[0]
    assert TOKEN not in result.output

"""PollerHub: shared pollers over a real smart-HTTP server; waits are events and deadlines."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror.poll_types import (
    PollError,
    PollerStats,
    RegistrySnapshot,
    Source,
    Update,
)
from gitstage.adapters.mirror.poller import Backoff, PollerHub
from gitstage.adapters.mirror.remote_mirror import Timeouts
from gitstage.domain.registry.views import stage_view
from tests.poller.conftest import BASE, PASSWORD, USER, Remote

HOUR = 3600.0
DEADLINE = 20.0


class Collector:
    """An `on_change` callback that records updates and lets a test await one."""

    def __init__(self) -> None:
        self.updates: list[Update] = []
        self._arrived = asyncio.Event()

    async def __call__(self, update: Update) -> None:
        self.updates.append(update)
        self._arrived.set()

    async def until(self, predicate: Callable[[list[Update]], bool]) -> Update:
        async def wait() -> None:
            while not predicate(self.updates):
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(wait(), DEADLINE)
        return self.updates[-1]

    async def snapshot(self, count: int = 1) -> RegistrySnapshot:
        update = await self.until(lambda u: len(snapshots(u)) >= count)
        assert isinstance(update, RegistrySnapshot)
        return update

    async def error(self) -> PollError:
        update = await self.until(lambda u: any(isinstance(x, PollError) for x in u))
        assert isinstance(update, PollError)
        return update


def snapshots(updates: list[Update]) -> list[RegistrySnapshot]:
    return [u for u in updates if isinstance(u, RegistrySnapshot)]


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until the deadline (the hub runs in this loop, so yield to it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def prod(snapshot: RegistrySnapshot) -> list[str]:
    view = stage_view(snapshot.registry.state.artifacts["churn"])
    return [v.version for v in view.get("prod", [])]


def only(hub: PollerHub) -> PollerStats:
    (stats,) = hub.stats()
    return stats


def idle_after(hub: PollerHub, polls: int) -> Callable[[], bool]:
    def done() -> bool:
        stats = only(hub)
        return stats.polls >= polls and not stats.in_flight and not stats.request_pending

    return done


def run(test: Callable[[PollerHub], Coroutine[Any, Any, None]], cache: Path, **kw: Any) -> None:
    async def main() -> None:
        hub = PollerHub(cache, **kw)
        try:
            await test(hub)
        finally:
            await hub.close()

    asyncio.run(main())


def test_subscribers_of_one_repository_share_one_poller(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    source = Source(remote.url)

    async def scenario(hub: PollerHub) -> None:
        first, second = Collector(), Collector()
        hub.subscribe("ns/a", source, credentials, HOUR, first)
        snapshot = await first.snapshot()
        assert prod(snapshot) == ["v1.0.0"]
        assert snapshot.head == remote.clone.commits["two"]
        commands = remote.server.commands.copy()
        # The second subscriber gets the current snapshot at once, without touching the server.
        hub.subscribe(
            "ns/b", Source(remote.url, timeouts=Timeouts(fetch=600)), credentials, HOUR, second
        )
        assert await second.snapshot() is snapshot
        assert remote.server.commands == commands
        assert only(hub).subscribers == ("ns/a", "ns/b")
        # Each round is one ref listing for both, and delivers nothing: nothing changed.
        for round_, key in enumerate(["ns/a", "ns/b", "ns/a"], start=2):
            assert hub.request(key)
            await eventually(idle_after(hub, round_), f"poll {round_}")
            assert remote.server.commands["ls-refs"] - commands["ls-refs"] == round_ - 1
        assert remote.server.commands["fetch"] == commands["fetch"]
        stats = only(hub)
        assert (stats.polls, stats.changes, stats.errors) == (4, 1, 0)
        assert (stats.ref_listings, stats.fetches, stats.blob_fetches) == (4, 1, 1)
        assert stats.last_poll_seconds is not None
        assert len(first.updates) == len(second.updates) == 1

    run(scenario, tmp_path / "cache")


def test_a_pushed_stage_tag_reaches_every_subscriber(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    async def scenario(hub: PollerHub) -> None:
        first, second = Collector(), Collector()
        hub.subscribe("ns/a", Source(remote.url), credentials, HOUR, first)
        hub.subscribe("ns/b", Source(remote.url), credentials, HOUR, second)
        before = await first.snapshot()
        await second.snapshot()
        remote.clone.tag("churn#prod#2", BASE + 50, target=remote.clone.commits["two"])
        remote.clone.push("refs/tags/churn#prod#2")
        hub.request("ns/b")
        for collector in (first, second):
            after = await collector.snapshot(2)
            assert prod(after) == ["v2.0.0"]
            assert after.digest != before.digest
            assert after.changed_at > before.changed_at
        assert only(hub).changes == 2

    run(scenario, tmp_path / "cache")


def test_requests_during_a_poll_cause_at_most_one_more(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    async def scenario(hub: PollerHub) -> None:
        collector = Collector()
        hub.subscribe("ns/a", Source(remote.url), credentials, HOUR, collector)
        await collector.snapshot()
        listings = remote.server.commands["ls-refs"]
        remote.server.hold()
        try:
            hub.request("ns/a")
            await eventually(remote.server.waiting.is_set, "the poll to reach the server")
            assert only(hub).in_flight
            for _ in range(25):
                hub.request("ns/a")
            assert only(hub).request_pending
        finally:
            remote.server.release()
        await eventually(idle_after(hub, 3), "the coalesced poll")
        # Idle, nothing pending, next poll an hour away: no fourth poll can come.
        assert only(hub).polls == 3
        assert remote.server.commands["ls-refs"] - listings == 2

    run(scenario, tmp_path / "cache")


def test_unreachable_server_keeps_the_last_good_snapshot_and_backs_off(
    remote: Remote, credentials: GitCredentials, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(hub: PollerHub) -> None:
        collector = Collector()
        hub.subscribe("ns/a", Source(remote.url), credentials, HOUR, collector)
        good = await collector.snapshot()
        remote.server.stop()
        hub.request("ns/a")
        error = await collector.error()
        assert error.reason == "SourceUnavailable"
        assert not error.permanent
        assert error.last_good is good
        assert "\n" not in error.message
        # Retries come by themselves, backing off; the same failure is delivered once.
        await eventually(lambda: only(hub).errors >= 3, "two retries")
        assert only(hub).consecutive_failures >= 3
        assert sum(isinstance(u, PollError) for u in collector.updates) == 1
        assert PASSWORD not in caplog.text

    run(scenario, tmp_path / "cache", backoff=Backoff(first=0.05, cap=0.2))


def test_recovery_after_a_timeout_redelivers_the_snapshot(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    source = Source(remote.url, timeouts=Timeouts(ls_remote=0.5))

    async def scenario(hub: PollerHub) -> None:
        collector = Collector()
        hub.subscribe("ns/a", source, credentials, HOUR, collector)
        good = await collector.snapshot()
        remote.server.hold()
        try:
            hub.request("ns/a")
            error = await collector.error()
        finally:
            remote.server.release()
        assert "timed out" in error.message
        assert error.last_good is good
        recovered = await collector.snapshot(2)
        assert recovered is good  # same refs: the snapshot is still right, and is re-sent
        assert only(hub).consecutive_failures == 0
        assert only(hub).fetches == 1

    run(scenario, tmp_path / "cache", backoff=Backoff(first=0.05, cap=0.2))


def test_wrong_credentials_reach_subscribers_as_a_permanent_error_without_the_secret(
    remote: Remote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = GitCredentials(USER, "wrong-Kx9-secret-0815")

    async def scenario(hub: PollerHub) -> None:
        collector = Collector()
        hub.subscribe("ns/a", Source(remote.url), wrong, HOUR, collector)
        error = await collector.error()
        assert error.reason == "AuthenticationFailed"
        assert error.permanent
        assert error.last_good is None
        assert "wrong-Kx9-secret-0815" not in error.message
        assert "wrong-Kx9-secret-0815" not in caplog.text

    run(scenario, tmp_path / "cache")


def test_the_smallest_interval_rules_and_the_last_unsubscribe_stops_the_poller(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    async def scenario(hub: PollerHub) -> None:
        slow, fast = Collector(), Collector()
        hub.subscribe("ns/slow", Source(remote.url), credentials, HOUR, slow)
        await slow.snapshot()
        hub.subscribe("ns/fast", Source(remote.url), credentials, 0.1, fast)
        await eventually(lambda: only(hub).polls >= 4, "timer polls at the fast interval")
        hub.unsubscribe("ns/fast")
        hub.unsubscribe("ns/slow")
        assert hub.stats() == []
        assert hub.request("ns/slow") is False
        await eventually(
            lambda: not any(t.get_name().startswith("poll ") for t in asyncio.all_tasks()),
            "the poller task to end",
        )

    run(scenario, tmp_path / "cache")


def test_a_new_hub_on_a_warm_cache_delivers_without_fetching(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    seen: list[RegistrySnapshot] = []

    async def first(hub: PollerHub) -> None:
        collector = Collector()
        hub.subscribe("ns/a", Source(remote.url), credentials, HOUR, collector)
        seen.append(await collector.snapshot())

    async def restarted(hub: PollerHub) -> None:
        collector = Collector()
        commands = remote.server.commands.copy()
        hub.subscribe("ns/a", Source(remote.url), credentials, HOUR, collector)
        snapshot = await collector.snapshot()
        assert snapshot.digest == seen[0].digest
        assert snapshot.changed_at == seen[0].changed_at
        assert prod(snapshot) == ["v1.0.0"]
        assert {k: v - commands[k] for k, v in remote.server.commands.items()} == {
            "ls-refs": 1,
            "fetch": 0,
        }
        assert only(hub).changes == 0

    run(first, tmp_path / "cache")
    run(restarted, tmp_path / "cache")


def test_a_failing_subscriber_does_not_stop_the_others(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    async def broken(update: Update) -> None:
        raise RuntimeError("subscriber bug")

    async def scenario(hub: PollerHub) -> None:
        healthy = Collector()
        hub.subscribe("ns/broken", Source(remote.url), credentials, HOUR, broken)
        hub.subscribe("ns/ok", Source(remote.url), credentials, HOUR, healthy)
        await healthy.snapshot()
        remote.clone.tag("churn#prod#2", BASE + 50, target=remote.clone.commits["two"])
        remote.clone.push("refs/tags/churn#prod#2")
        hub.request("ns/ok")
        assert prod(await healthy.snapshot(2)) == ["v2.0.0"]

    run(scenario, tmp_path / "cache")


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=1.0, cap=300.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 9, 10, 500)] == [1, 2, 4, 8, 256, 300, 300]


def test_subscribe_refuses_a_non_positive_interval(tmp_path: Path) -> None:
    async def scenario(hub: PollerHub) -> None:
        with pytest.raises(ValueError, match="positive"):
            hub.subscribe("ns/a", Source("http://127.0.0.1:9/r.git"), None, 0, Collector())
        assert hub.stats() == []

    run(scenario, tmp_path / "cache")

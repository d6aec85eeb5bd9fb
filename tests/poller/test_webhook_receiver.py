"""The webhook receiver in-process: real HTTP on loopback, the operator's feed over a PollerHub,
a real smart-HTTP git server; a signed push makes the followers' shared poller poll, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror.poller import PollerHub
from gitstage.domain.registry.views import stage_view
from gitstage.operator import endpoints, observability
from gitstage.operator.feed import Follow, HubFeed, SourceView
from gitstage.operator.settings import WebhookLimits
from gitstage.operator.webhook_server import WebhookServer
from gitstage.operator.webhooks import WebhookReceiver, on_loop
from tests.poller.conftest import BASE, PASSWORD, USER, Remote
from tests.poller.test_hub import eventually
from tests.support import exported_metrics
from tests.support import forge_payloads as fp

SECRET = b"receiver-secret-77"
TAG_OBJECT = "1f" * 20


class Views:
    """A worker's `on_update`: records what the feed delivers."""

    def __init__(self) -> None:
        self.views: list[SourceView] = []

    async def __call__(self, view: SourceView) -> None:
        self.views.append(view)

    def prod(self) -> list[str]:
        """The version in churn's prod stage (GTO's default view), in the last delivered view."""
        latest = self.views[-1] if self.views else None
        if latest is None or latest.registry is None:
            return []
        view = stage_view(latest.registry.state.artifacts["churn"])
        return [version.version for version in view.get("prod", [])]


def follow(url: str, interval: str = "1h") -> Follow:
    return Follow(url, "main", interval, "30s", GitCredentials(USER, PASSWORD))


def forge_repo(url: str) -> fp.ForgeRepo:
    """How a forge would spell the served repository: without `.git`, another scp-like form."""
    return fp.ForgeRepo(url.removesuffix(".git"), "git@127.0.0.1:registry.git", url, "x/registry")


async def post(session: aiohttp.ClientSession, base: str, delivery: fp.Delivery) -> tuple[int, str]:
    async with session.post(
        base + delivery.path, data=delivery.body, headers=delivery.headers
    ) as r:
        return r.status, await r.text()


class Running:
    def __init__(self, feed: HubFeed, base: str, metrics: str) -> None:
        self.feed, self.base, self.metrics_url = feed, base, metrics

    def polls(self, key: str) -> int:
        stats = self.feed.stats_for(key)
        assert stats is not None
        return stats.polls

    def idle(self, key: str, polls: int) -> Callable[[], bool]:
        def done() -> bool:
            stats = self.feed.stats_for(key)
            assert stats is not None
            return stats.polls >= polls and not stats.in_flight and not stats.request_pending

        return done


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    hub = PollerHub(tmp_path / "cache", on_poll=observability.record_poll)
    feed = HubFeed(hub)
    receiver = WebhookReceiver(on_loop(asyncio.get_running_loop(), feed), (SECRET,))
    hooks = await WebhookServer(receiver, "127.0.0.1", 0, WebhookLimits()).start()
    scrape = await endpoints.serve("metrics", endpoints.metrics_app(), "127.0.0.1", 0)
    try:
        yield Running(feed, f"http://127.0.0.1:{hooks.port}", f"http://127.0.0.1:{scrape.port}")
    finally:
        await hooks.close()
        await scrape.close()
        await feed.close()


def run(tmp_path: Path, scenario: Callable[[Running], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with running(tmp_path) as env:
            await scenario(env)

    asyncio.run(main())


def test_a_burst_of_signed_pushes_ends_in_one_coalesced_poll_for_every_follower(
    remote: Remote, tmp_path: Path
) -> None:
    async def scenario(env: Running) -> None:
        a, b, c, other = Views(), Views(), Views(), Views()
        env.feed.follow("ns/a", follow(remote.url), a)
        env.feed.follow("ns/b", follow(remote.url), b)  # shares a's poller
        # The same repository spelt without `.git`: its own poller, also asked to poll.
        env.feed.follow("ns/c", follow(remote.url.removesuffix(".git")), c)
        env.feed.follow("ns/other", follow(remote.server.url("other.git")), other)
        await eventually(lambda: all(f.views for f in (a, b, c, other)), "first polls")
        await eventually(env.idle("ns/a", 1), "the first poll of a")
        await eventually(env.idle("ns/c", 1), "the first poll of c")
        before = {key: env.polls(key) for key in ("ns/a", "ns/c", "ns/other")}
        listings = remote.server.commands["ls-refs"]
        assert a.prod() == ["v1.0.0"]

        # An annotated stage tag: the payload's `after` is the tag object, which we never trust.
        remote.clone.tag("churn#prod#2", BASE + 40, remote.clone.commits["two"])
        remote.clone.push("refs/tags/churn#prod#2")
        deliveries = [
            fp.github_push(forge_repo(remote.url), "refs/tags/churn#prod#2", TAG_OBJECT, SECRET)
            for _ in range(10)
        ]
        async with aiohttp.ClientSession() as session:
            remote.server.hold()
            try:
                assert await post(session, env.base, deliveries[0]) == (202, "accepted\n")
                await eventually(remote.server.waiting.is_set, "the poll to reach the server")
                answers = await asyncio.gather(
                    *(post(session, env.base, d) for d in deliveries[1:])
                )
                assert set(answers) == {(202, "accepted\n")}
            finally:
                remote.server.release()
        await eventually(env.idle("ns/a", before["ns/a"] + 2), "the coalesced poll")
        await eventually(env.idle("ns/c", before["ns/c"] + 1), "c's poll")
        assert env.polls("ns/a") == before["ns/a"] + 2  # the one in flight, one for the burst
        c_polls = env.polls("ns/c") - before["ns/c"]
        assert c_polls in (1, 2)  # its first request found it idle or held at the gate
        assert remote.server.commands["ls-refs"] - listings == 2 + c_polls
        assert env.polls("ns/other") == before["ns/other"]  # another repository: not polled
        await eventually(lambda: a.prod() == b.prod() == c.prod() == ["v2.0.0"], "the new stage")

    run(tmp_path, scenario)


def test_unknown_repositories_and_bad_requests_poll_nothing_and_say_little(
    remote: Remote, tmp_path: Path
) -> None:
    async def scenario(env: Running) -> None:
        views = Views()
        env.feed.follow("ns/a", follow(remote.url), views)
        await eventually(env.idle("ns/a", 1), "the first poll")
        polls = env.polls("ns/a")
        stranger = fp.ForgeRepo(
            "https://github.com/acme/elsewhere.git",
            "git@github.com:acme/elsewhere.git",
            "https://github.com/acme/elsewhere",
        )
        good = fp.github_push(forge_repo(remote.url), "refs/heads/main", "ab" * 20, SECRET)
        huge = fp.generic_push([remote.url] + ["x" * 1000] * 1100, SECRET)
        cases: list[tuple[fp.Delivery, int, str]] = [
            (fp.github_push(stranger, "refs/tags/a", TAG_OBJECT, SECRET), 202, "accepted"),
            (
                fp.github_push(forge_repo(remote.url), "refs/tags/a", TAG_OBJECT, b"wrong"),
                401,
                "X-Hub-Signature-256 does not match the body",
            ),
            (
                fp.Delivery(good.path, good.headers, good.body + b" "),
                401,
                "X-Hub-Signature-256 does not match the body",
            ),
            (signed_garbage(), 400, "malformed JSON: Expecting value: line 1 column 1 (char 0)"),
            (huge, 413, f"body of {len(huge.body)} bytes exceeds the limit of 1048576"),
            (fp.github_event("ping", {"zen": "Design for failure."}, SECRET), 200, "pong"),
            (fp.github_event("issues", {"action": "opened"}, SECRET), 202, "ignored issues event"),
        ]
        async with aiohttp.ClientSession() as session:
            for delivery, status, text in cases:
                assert await post(session, env.base, delivery) == (status, text + "\n")
            stats = env.feed.stats_for("ns/a")
            assert stats is not None
            assert (stats.polls, stats.request_pending) == (polls, False)  # nothing asked

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(20):
                    yield b" " * 65536

            url = env.base + "/hooks/generic"
            async with session.post(url, data=chunks(), headers=huge.headers) as response:
                assert response.status == 413
            async with session.get(env.base + "/hooks/github") as response:
                assert response.status == 405
            async with session.post(env.base + "/hooks/svn", data=b"{}") as response:
                assert response.status == 404
            async with session.get(env.metrics_url + "/metrics") as response:
                assert response.status == 200
                text = await response.text()
        refused = ("forge", "github"), ("outcome", "401")
        too_big = ("forge", "generic"), ("outcome", "413")
        samples = exported_metrics.parse(text)
        shown = remote.url  # no userinfo in it: it is the label as is
        assert samples[("gitstage_webhook_requests_total", refused)] >= 2
        assert samples[("gitstage_webhook_requests_total", too_big)] >= 2
        assert samples[("gitstage_poll_duration_seconds_count", (("repository", shown),))] >= 1
        changed = ("outcome", "changed"), ("repository", shown)
        assert samples[("gitstage_polls_total", changed)] >= 1

    run(tmp_path, scenario)


def signed_garbage() -> fp.Delivery:
    body = b"<html>not json</html>"
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + fp.hex_hmac(SECRET, body),
    }
    return fp.Delivery("/hooks/github", headers, body)

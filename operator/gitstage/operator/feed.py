"""The workers' feed over the shared `PollerHub`: ModelRegistry specs in, `SourceView`s out.

The hub keeps one poller per (repository, credentials, branch) and coalesces requests; this
module only translates: a `Follow` into a hub subscription, a hub update into the view the
reconciler reads, and keeps which ModelRegistries follow which repository (for webhooks).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.reader import Registry
from gitstage.adapters.mirror.errors import MirrorError
from gitstage.adapters.mirror.poll_types import PollError, PollerStats, Source, Update
from gitstage.adapters.mirror.poller import PollerHub
from gitstage.adapters.mirror.remote_mirror import Timeouts
from gitstage.domain.policy.rules import PolicyEvaluator
from gitstage.domain.repo_urls import repository_key
from gitstage.workloads.status import rfc3339

log = logging.getLogger(__name__)

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    """`1m30s` -> 90.0 (the CRD's pattern guarantees the form)."""
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(duration)) or 60.0


@dataclass(frozen=True)
class SourceView:
    """What the poller knows of the repository: a readable registry, an error, or both.

    Built here from the hub's updates (and by the worker when the source Secret is missing);
    read by reconcile.py.
    """

    registry: Registry | None
    digest: str | None
    head: str | None
    changed_at: str | None
    error: str | None = None
    error_reason: str | None = None
    permanent: bool = False
    policy: PolicyEvaluator | None = None  # the registry's promotion policy, if it has one


@dataclass(frozen=True)
class Follow:
    """What a worker follows: changing any of it means a new subscription."""

    url: str
    branch: str
    interval: str
    timeout: str
    credentials: GitCredentials | None


Callback = Callable[[SourceView], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class _Relay:
    """The hub's `on_change` for one worker; equal relays let the hub skip redeliveries."""

    on_update: Callback

    async def __call__(self, update: Update) -> None:
        await self.on_update(to_view(update))


class HubFeed:
    """Implements the worker's `Feed` protocol; call from the event loop."""

    def __init__(self, hub: PollerHub) -> None:
        self.hub = hub
        self._repositories: dict[str, str] = {}  # follower key -> repository key
        self._pending: set[asyncio.Task[None]] = set()

    def follow(self, key: str, follow: Follow, on_update: Callback) -> None:
        source = Source(follow.url, follow.branch, Timeouts.uniform(seconds(follow.timeout)))
        try:
            self.hub.subscribe(
                key, source, follow.credentials, seconds(follow.interval), _Relay(on_update)
            )
        except MirrorError as error:  # refused before any git runs (e.g. an invalid URL)
            self.unfollow(key)
            view = SourceView(None, None, None, None, str(error), error.reason, error.permanent)
            task = asyncio.create_task(on_update(view))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        self._repositories[key] = repository_key(follow.url)

    def unfollow(self, key: str) -> None:
        self._repositories.pop(key, None)
        self.hub.unsubscribe(key)

    def request(self, key: str, refs: Collection[str] = ()) -> bool:
        return self.hub.request(key, refs)

    def followers_of(self, repositories: set[str]) -> list[str]:
        """Keys of the ModelRegistries following any of these repository keys."""
        return sorted(key for key, repo in self._repositories.items() if repo in repositories)

    def stats_for(self, key: str) -> PollerStats | None:
        return self.hub.stats_for(key)

    async def close(self) -> None:
        for task in self._pending:
            task.cancel()
        await self.hub.close()
        self._repositories.clear()


def to_view(update: Update) -> SourceView:
    if isinstance(update, PollError):
        good = update.last_good
        return SourceView(
            registry=good.registry if good else None,
            digest=good.digest if good else None,
            head=good.head if good else None,
            changed_at=_instant(good.changed_at) if good else None,
            error=update.message,
            error_reason=update.reason,
            permanent=update.permanent,
            policy=good.policy if good else None,
        )
    return SourceView(
        update.registry,
        update.digest,
        update.head,
        _instant(update.changed_at),
        policy=update.policy,
    )


def _instant(moment: datetime) -> str:
    return rfc3339(moment)

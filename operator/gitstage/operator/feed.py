"""Shared pollers: one per (repository, branch, credentials), fanned out to every ModelRegistry.

Each poller lists the remote's refs every interval (the smallest of its followers', jittered by
up to 10%) and fetches only when they changed. Followers get the new registry, or the error
along with the last good registry, so workloads keep serving through outages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitstage.adapters.fetch.credentials import GitCredentials
from gitstage.adapters.git.remote import MirrorError, RemoteMirror, fingerprint
from gitstage.domain.policy import PolicyFileError
from gitstage.operator.reconcile import SourceView
from gitstage.operator.worker import Follow

log = logging.getLogger(__name__)

Callback = Callable[[SourceView], Coroutine[Any, Any, None]]
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_BACKOFF = 300.0


def seconds(duration: str) -> float:
    """`1m30s` -> 90.0 (the CRD's pattern guarantees the form)."""
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(duration)) or 60.0


@dataclass
class Poller:
    mirror: RemoteMirror
    followers: dict[str, tuple[float, Callback]] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    view: SourceView | None = None
    task: asyncio.Task[None] | None = None
    polls: int = 0
    changes: int = 0
    last_duration: float = 0.0

    def interval(self) -> float:
        return min(interval for interval, _ in self.followers.values())


class PollingFeed:
    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._pollers: dict[str, Poller] = {}
        self._membership: dict[str, str] = {}
        self._deliveries: set[asyncio.Task[None]] = set()

    @property
    def pollers(self) -> dict[str, Poller]:
        return self._pollers

    def follow(self, key: str, follow: Follow, on_update: Callback) -> None:
        credentials = _credentials(follow)
        poller_id = fingerprint(follow.url, credentials, follow.branch)
        if self._membership.get(key) == poller_id:
            # Same repository: only the interval may have changed; keep the poller's state.
            poller = self._pollers[poller_id]
            poller.followers[key] = (seconds(follow.interval), on_update)
            poller.wakeup.set()  # re-arm the timer with the new interval
            return
        self.unfollow(key)
        existing = self._pollers.get(poller_id)
        if existing is not None:
            poller = existing
        else:
            mirror = RemoteMirror(
                follow.url, credentials, self._cache_dir, follow.branch, seconds(follow.timeout)
            )
            poller = self._pollers[poller_id] = Poller(mirror)
            poller.task = asyncio.create_task(self._run(poller), name=f"poll {mirror.url}")
        poller.followers[key] = (seconds(follow.interval), on_update)
        self._membership[key] = poller_id
        if poller.view is not None:
            # A new follower of a known repository gets the last snapshot without a refetch.
            self._deliveries.add(asyncio.create_task(on_update(poller.view)))
            self._deliveries = {t for t in self._deliveries if not t.done()}
        else:
            poller.wakeup.set()

    def unfollow(self, key: str) -> None:
        poller_id = self._membership.pop(key, None)
        if poller_id is None:
            return
        poller = self._pollers[poller_id]
        poller.followers.pop(key, None)
        if not poller.followers:
            del self._pollers[poller_id]
            if poller.task is not None:
                poller.task.cancel()

    def request(self, key: str) -> None:
        poller_id = self._membership.get(key)
        if poller_id is not None:
            self._pollers[poller_id].wakeup.set()

    async def close(self) -> None:
        tasks = [p.task for p in self._pollers.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pollers.clear()
        self._membership.clear()

    async def _run(self, poller: Poller) -> None:
        failures = 0
        while poller.followers:
            poller.wakeup.clear()
            failed = await self._poll(poller)
            failures = failures + 1 if failed else 0
            delay = poller.interval() * random.uniform(0.9, 1.1)  # noqa: S311 - jitter
            if failures:
                delay = min(MAX_BACKOFF, max(delay, 2.0**failures))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poller.wakeup.wait(), timeout=delay)

    async def _poll(self, poller: Poller) -> bool:
        started = asyncio.get_running_loop().time()
        poller.polls += 1
        try:
            result = await asyncio.to_thread(poller.mirror.sync)
            if not result.changed and poller.view is not None and poller.view.error is None:
                return False
            registry = await asyncio.to_thread(poller.mirror.registry)
            policy = await asyncio.to_thread(poller.mirror.policy, registry)
        except MirrorError as error:
            log.warning("poll of %s failed: %s", poller.mirror.url, error)
            await self._publish(poller, _failed(poller.view, error))
            return True
        except PolicyFileError as error:  # keep serving under the last good policy
            log.warning("policy of %s is invalid: %s", poller.mirror.url, error)
            await self._publish(poller, _failed(poller.view, error, "InvalidPolicy"))
            return True
        except Exception as error:  # an unreadable registry must not kill the poller
            log.warning("reading %s failed: %s", poller.mirror.url, str(error).splitlines()[0])
            await self._publish(poller, _failed(poller.view, error, "RegistryUnreadable"))
            return True
        finally:
            poller.last_duration = asyncio.get_running_loop().time() - started
        poller.changes += 1
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        view = SourceView(registry, result.refs.digest, result.refs.head, now, policy=policy)
        await self._publish(poller, view)
        return False

    async def _publish(self, poller: Poller, view: SourceView) -> None:
        if view == poller.view:
            return
        poller.view = view
        await asyncio.gather(*(callback(view) for _, callback in poller.followers.values()))


def _credentials(follow: Follow) -> GitCredentials | None:
    creds = follow.credentials
    if creds is None:
        return None
    return GitCredentials(
        creds.username, creds.password, creds.bearer_token, creds.ssh_identity, creds.known_hosts
    )


def _failed(previous: SourceView | None, error: Exception, reason: str | None = None) -> SourceView:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    permanent = isinstance(error, MirrorError) and error.permanent
    return SourceView(
        registry=previous.registry if previous else None,
        digest=previous.digest if previous else None,
        head=previous.head if previous else None,
        changed_at=previous.changed_at if previous else None,
        policy=previous.policy if previous else None,
        error=message,
        error_reason=reason or (error.reason if isinstance(error, MirrorError) else "Error"),
        permanent=permanent,
    )

"""Shared pollers: one asyncio task per (repository, credentials, branch), for many subscribers.

Each poller syncs its `RemoteMirror` every interval (the smallest of its subscribers', jittered
by up to ±10%): an unchanged remote costs one ref listing and delivers nothing. A change delivers
a new `RegistrySnapshot`; a failure delivers a `PollError` carrying the last good snapshot, then
the poller backs off exponentially (capped) as Flux's source-controller does. `request()` polls
now; requests that arrive while a poll runs cause at most one more poll.

Subscribers always end with the latest update: each has a lock and the sequence number of what
it was last given, so a slow subscriber skips intermediate updates instead of queueing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror.errors import (
    GitOperationFailed,
    InvalidPolicy,
    MirrorError,
    RegistryUnreadable,
    scrub,
)
from gitstage.adapters.mirror.poll_types import (
    OnChange,
    OnPoll,
    PollError,
    PollerStats,
    PollRecord,
    RegistrySnapshot,
    Source,
    Update,
)
from gitstage.adapters.mirror.remote_mirror import RemoteMirror, SyncResult, Timeouts
from gitstage.domain.policy.rules import PolicyFileError
from gitstage.domain.repo_urls import redact

log = logging.getLogger(__name__)
CONFIRM_AFTER = 10.0  # seconds from a poll of webhook-named refs to the full poll after it


@dataclass(frozen=True)
class Backoff:
    """Delay after the n-th consecutive failure: first * 2**(n-1), at most `cap` seconds."""

    first: float = 1.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        return min(self.cap, self.first * 2.0 ** min(failures - 1, 32))


@dataclass
class _Subscriber:
    source: Source
    interval: float
    on_change: OnChange
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seen: int = 0  # sequence number of the last update delivered


@dataclass
class _Poller:
    mirror: RemoteMirror
    subscribers: dict[str, _Subscriber] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    requested: bool = False
    hints: set[str] = field(default_factory=set)  # refs webhooks named since the last poll
    full_wanted: bool = False  # a request named no refs: list them all
    confirm_at: float | None = None  # loop time of the full poll that follows a partial one
    in_flight: bool = False
    task: asyncio.Task[None] | None = None
    latest: Update | None = None
    seq: int = 0
    snapshot: RegistrySnapshot | None = None
    failures: int = 0
    polls: int = 0
    changes: int = 0
    errors: int = 0
    last_poll_seconds: float | None = None

    def interval(self) -> float:
        return min(sub.interval for sub in self.subscribers.values())

    def timeouts(self) -> Timeouts:
        widest = Timeouts(0.0, 0.0, 0.0)
        for sub in self.subscribers.values():
            widest = widest.widest(sub.source.timeouts)
        return widest


class PollerHub:
    """Call from the event loop (kopf handlers): subscribe/unsubscribe/request never block."""

    def __init__(
        self,
        cache_root: Path,
        *,
        backoff: Backoff | None = None,
        jitter: float = 0.1,
        rng: random.Random | None = None,
        on_poll: OnPoll | None = None,
    ) -> None:
        self._cache_root = cache_root
        self._on_poll = on_poll  # told of every finished poll (metrics); must not block
        self._backoff = backoff or Backoff()
        self._jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._pollers: dict[str, _Poller] = {}
        self._membership: dict[str, str] = {}  # subscriber key -> poller id
        self._deliveries: set[asyncio.Task[None]] = set()

    def subscribe(
        self,
        key: str,
        source: Source,
        credentials: GitCredentials | None,
        interval: float,
        on_change: OnChange,
    ) -> None:
        """Follow `source` as `key` (a ModelRegistry's `namespace/name`); replaces an earlier call.

        The current snapshot (or error) is delivered promptly, without a fetch, when the
        repository is already polled; otherwise once the first poll ends.
        """
        if interval <= 0:
            raise ValueError(f"poll interval must be positive, got {interval}")
        mirror = RemoteMirror(source.url, credentials, self._cache_root, source.branch)
        subscriber = _Subscriber(source, interval, on_change)
        if self._membership.get(key) != mirror.id:
            self.unsubscribe(key)
        poller = self._pollers.get(mirror.id)
        previous = poller.subscribers.get(key) if poller is not None else None
        if previous is not None and previous.on_change == on_change:
            # The same follower (a new interval, say): no redelivery of what it already has.
            subscriber.seen, subscriber.lock = previous.seen, previous.lock
        if poller is None:
            poller = self._pollers[mirror.id] = _Poller(mirror)
            poller.task = asyncio.create_task(self._run(poller), name=f"poll {mirror.shown_url}")
        poller.subscribers[key] = subscriber
        self._membership[key] = mirror.id
        poller.wakeup.set()  # re-arm the timer: the interval may have shrunk
        if poller.latest is not None:
            self._spawn_delivery(poller, key, subscriber)

    def unsubscribe(self, key: str) -> None:
        """Stop following; the last subscriber's departure stops the poller."""
        poller_id = self._membership.pop(key, None)
        if poller_id is None:
            return
        poller = self._pollers[poller_id]
        poller.subscribers.pop(key, None)
        if not poller.subscribers:
            del self._pollers[poller_id]
            if poller.task is not None:
                poller.task.cancel()
        else:
            poller.wakeup.set()  # re-arm the timer: the interval may have grown

    def request(self, key: str, refs: Collection[str] = ()) -> bool:
        """Poll `key`'s repository now (coalesced); False if `key` is not subscribed.

        `refs`: the refs a webhook named. The poll then reads only those from the remote (see
        `RemoteMirror.sync`), and a full poll follows CONFIRM_AFTER seconds later in case the
        forge named fewer refs than were pushed.
        """
        poller_id = self._membership.get(key)
        if poller_id is None:
            return False
        poller = self._pollers[poller_id]
        if refs:
            poller.hints.update(refs)
        else:
            poller.full_wanted = True
        poller.requested = True
        poller.wakeup.set()
        return True

    def stats(self) -> list[PollerStats]:
        return [_stats(poller) for poller in self._pollers.values()]

    def stats_for(self, key: str) -> PollerStats | None:
        poller_id = self._membership.get(key)
        return None if poller_id is None else _stats(self._pollers[poller_id])

    async def close(self) -> None:
        tasks = [p.task for p in self._pollers.values() if p.task is not None]
        tasks += list(self._deliveries)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pollers.clear()
        self._membership.clear()
        self._deliveries.clear()

    async def _run(self, poller: _Poller) -> None:
        while True:
            hints = () if poller.full_wanted else tuple(poller.hints)
            poller.requested, poller.full_wanted = False, False
            poller.hints.clear()
            await self._poll(poller, hints)
            await self._pause(poller)

    async def _pause(self, poller: _Poller) -> None:
        """Wait out the interval (or the backoff) unless a request comes in."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        factor = self._rng.uniform(1.0 - self._jitter, 1.0 + self._jitter)
        while not poller.requested:
            base = self._backoff.delay(poller.failures) if poller.failures else poller.interval()
            remaining = started + base * factor - loop.time()
            if poller.confirm_at is not None and not poller.failures:
                remaining = min(remaining, poller.confirm_at - loop.time())
            if remaining <= 0:
                return
            poller.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poller.wakeup.wait(), timeout=remaining)

    async def _poll(self, poller: _Poller, hints: tuple[str, ...] = ()) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        poller.in_flight = True
        poller.polls += 1
        poller.mirror.timeouts = poller.timeouts()
        outcome, reason = "unchanged", None
        try:
            snapshot = await self._sync(poller, hints)
        except Exception as error:  # an unreadable registry must not kill the poller either
            outcome, reason = "error", _reason(error)
            await self._failed(poller, error)
        else:
            if snapshot is not poller.snapshot:
                outcome = "changed"
            await self._succeeded(poller, snapshot)
        finally:
            poller.in_flight = False
            elapsed = poller.last_poll_seconds = loop.time() - started
        if self._on_poll is not None:
            record = PollRecord(poller.mirror.shown_url, elapsed, outcome, reason)
            self._on_poll(record)

    async def _sync(self, poller: _Poller, hints: tuple[str, ...]) -> RegistrySnapshot:
        result: SyncResult = await asyncio.to_thread(poller.mirror.sync, hints)
        if not result.partial:
            poller.confirm_at = None  # every ref was listed
        elif poller.confirm_at is None:
            poller.confirm_at = asyncio.get_running_loop().time() + CONFIRM_AFTER
        if result.changed:
            poller.changes += 1
        if poller.snapshot is not None and poller.snapshot.digest == result.digest:
            # Unchanged refs. (Compared with the snapshot, not `result.changed`: after a sync
            # whose registry could not be read, the refs are unchanged but must be read again.)
            return poller.snapshot
        try:
            registry = await asyncio.to_thread(poller.mirror.registry)
        except MirrorError:
            raise
        except Exception as error:  # a domain error: bad artifacts.yaml, unreadable tag
            raise RegistryUnreadable(
                f"reading {poller.mirror.shown_url}: {_first(error)}"
            ) from None
        try:
            policy = await asyncio.to_thread(poller.mirror.policy, registry)
        except PolicyFileError as error:  # subscribers keep the last good snapshot and policy
            raise InvalidPolicy(_first(error)) from None
        return RegistrySnapshot(registry, result.digest, result.head, result.synced_at, policy)

    async def _succeeded(self, poller: _Poller, snapshot: RegistrySnapshot) -> None:
        poller.failures = 0
        if snapshot is poller.snapshot and not isinstance(poller.latest, PollError):
            return  # unchanged: nothing to deliver, no API write downstream
        poller.snapshot = snapshot
        self._publish(poller, snapshot)

    async def _failed(self, poller: _Poller, error: Exception) -> None:
        poller.failures += 1
        poller.errors += 1
        failure = _poll_error(poller, error)
        previous = poller.latest
        if isinstance(previous, PollError) and (previous.reason, previous.message) == (
            failure.reason,
            failure.message,
        ):
            return  # the same failure again: subscribers already know
        log.warning("poll of %s failed: %s", poller.mirror.shown_url, failure.message)
        self._publish(poller, failure)

    def _publish(self, poller: _Poller, update: Update) -> None:
        poller.seq += 1
        poller.latest = update
        for key, subscriber in poller.subscribers.items():
            self._spawn_delivery(poller, key, subscriber)

    def _spawn_delivery(self, poller: _Poller, key: str, subscriber: _Subscriber) -> None:
        task = asyncio.create_task(self._deliver(poller, key, subscriber))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, poller: _Poller, key: str, subscriber: _Subscriber) -> None:
        async with subscriber.lock:
            update, seq = poller.latest, poller.seq
            if (
                update is None
                or seq <= subscriber.seen
                or poller.subscribers.get(key) is not subscriber
            ):
                return
            subscriber.seen = seq
            try:
                await subscriber.on_change(update)
            except Exception:
                log.exception("subscriber %s failed to take an update", key)


def _first(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _reason(error: Exception) -> str:
    return error.reason if isinstance(error, MirrorError) else GitOperationFailed.reason


def _poll_error(poller: _Poller, error: Exception) -> PollError:
    if isinstance(error, MirrorError):
        reason, permanent, text = error.reason, error.permanent, str(error)
    else:  # not git's words: an OSError on the cache, a bug
        reason, permanent = GitOperationFailed.reason, False
        first = str(error).splitlines()[0] if str(error) else ""
        text = f"poll of {poller.mirror.shown_url}: {type(error).__name__}: {first}"
    message = scrub(text, poller.mirror.secrets)
    return PollError(reason, message, permanent, datetime.now(UTC), poller.snapshot)


def _stats(poller: _Poller) -> PollerStats:
    counters = poller.mirror.counters
    return PollerStats(
        url=redact(poller.mirror.url),
        branch=poller.mirror.branch or "HEAD",
        subscribers=tuple(sorted(poller.subscribers)),
        interval=poller.interval() if poller.subscribers else 0.0,
        polls=poller.polls,
        changes=poller.changes,
        errors=poller.errors,
        last_poll_seconds=poller.last_poll_seconds,
        ref_listings=counters.ref_listings,
        fetches=counters.fetches,
        blob_fetches=counters.blob_fetches,
        in_flight=poller.in_flight,
        request_pending=poller.requested,
        consecutive_failures=poller.failures,
    )

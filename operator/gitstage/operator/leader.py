"""Leader election on a coordination.k8s.io Lease, as controller-runtime operators do it.

kopf's peering is not a Lease (it is a custom resource and pauses rather than elects), so
gitstage elects its own leader: every replica runs kopf and follows its registries' sources,
keeping the git mirrors warm, but only the Lease's holder reconciles and writes. The holder
renews every `renew_seconds`; a Lease not renewed for `duration_seconds` is taken over by the
first standby to see it so. A leader that cannot renew in time stops (the kubelet restarts it as
a standby), so two replicas never write at once for longer than the clock skew.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from gitstage.adapters.kube import leases, registries

log = logging.getLogger(__name__)


class Step(StrEnum):
    CREATE = "create"  # no Lease yet
    RENEW = "renew"  # ours
    ACQUIRE = "acquire"  # someone else's, expired
    STANDBY = "standby"  # someone else's, alive


@dataclass(frozen=True)
class LeaseView:
    holder: str | None
    renewed_at: datetime | None
    duration_seconds: int


def next_step(lease: LeaseView | None, me: str, now: datetime) -> Step:
    """What a replica does with the Lease as it reads it (pure)."""
    if lease is None:
        return Step.CREATE
    if lease.holder == me:
        return Step.RENEW
    if not lease.holder or lease.renewed_at is None:
        return Step.ACQUIRE
    expiry = lease.renewed_at + timedelta(seconds=lease.duration_seconds)
    return Step.ACQUIRE if now >= expiry else Step.STANDBY


@dataclass
class Leadership:
    """Whether this replica may write. Without election it always may."""

    leader: bool = True
    identity: str = ""
    on_elected: list[Callable[[], None]] = field(default_factory=list)

    def elected(self) -> None:
        self.leader = True
        for callback in self.on_elected:
            callback()


@dataclass(frozen=True)
class ElectionSettings:
    namespace: str
    name: str
    identity: str
    duration_seconds: int = 15
    renew_seconds: float = 5.0


class LeaseStore:
    """The Lease as the elector needs it (adapters/kube/leases.py behind it)."""

    def __init__(self, settings: ElectionSettings) -> None:
        self._settings = settings

    def round(self, now: datetime) -> bool:
        """One election round, blocking: True when this replica holds the Lease after it."""
        s = self._settings
        current = leases.read(s.namespace, s.name)
        view = None
        if current is not None and current.spec is not None:
            view = LeaseView(
                current.spec.holder_identity,
                current.spec.renew_time,
                current.spec.lease_duration_seconds or s.duration_seconds,
            )
        step = next_step(view, s.identity, now)
        if step is Step.STANDBY:
            return False
        claim = leases.Claim(s.identity, s.duration_seconds, now, acquired=step is not Step.RENEW)
        try:
            leases.write(s.namespace, s.name, current, claim)
        except leases.LeaseConflictError:
            return False
        return True


async def elect(
    settings: ElectionSettings,
    leadership: Leadership,
    on_lost: Callable[[], None],
    store: LeaseStore | None = None,
) -> None:
    """Run for the operator's lifetime: acquire, then renew; `on_lost` if renewing fails."""
    store = store or LeaseStore(settings)
    leadership.leader, leadership.identity = False, settings.identity
    last_renewal: datetime | None = None
    while True:
        now = datetime.now(UTC)
        try:
            # A round that hangs (a silent API server) counts as failed once the renewal is due:
            # the leader must see its deadline coming, whatever the HTTP client's timeouts are.
            held = await asyncio.wait_for(
                asyncio.to_thread(store.round, now), timeout=_round_timeout(settings)
            )
        except TimeoutError:
            log.warning("leader election: no answer from the API server in time")
            held = False
        except Exception as error:  # an API hiccup: retried until the lease's deadline
            log.warning("leader election: %s", str(error).splitlines()[0][:200])
            held = False
        if held:
            last_renewal = now
            if not leadership.leader:
                log.info(
                    "leader election: %s now leads (lease %s)", settings.identity, settings.name
                )
                leadership.elected()
        elif leadership.leader and _expired(last_renewal, settings):
            log.error("leader election: lost the lease %s; stopping", settings.name)
            leadership.leader = False
            on_lost()
            return
        await asyncio.sleep(settings.renew_seconds)


def _round_timeout(settings: ElectionSettings) -> float:
    return max(settings.renew_seconds, 1.0)


def _expired(last_renewal: datetime | None, settings: ElectionSettings) -> bool:
    if last_renewal is None:
        return True
    # Stop before a standby may take over: renewals failed for most of the lease's duration.
    margin = timedelta(seconds=settings.duration_seconds - settings.renew_seconds)
    return datetime.now(UTC) - last_renewal >= margin


class Targets(Protocol):
    def followers_of(self, repositories: set[str]) -> list[str]: ...

    def request(self, key: str, refs: Collection[str] = ()) -> bool: ...


_FORWARDER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="forward")
REQUESTED_AT = "gitstage.dev/requestedAt"


class StandbyTargets:
    """The webhook receiver's targets on any replica: the forge may reach a standby (a Service
    balances over all of them). A standby polls its own mirror (kept warm) and asks the leader
    to poll by annotating the registry, which the leader's watch sees at once."""

    def __init__(self, feed: Targets, leadership: Leadership) -> None:
        self._feed = feed
        self._leadership = leadership

    def followers_of(self, repositories: set[str]) -> list[str]:
        return self._feed.followers_of(repositories)

    def request(self, key: str, refs: Collection[str] = ()) -> bool:
        requested = self._feed.request(key, refs)
        if not self._leadership.leader:
            _FORWARDER.submit(_ask_the_leader, key)
        return requested


def _ask_the_leader(key: str) -> None:
    namespace, _, name = key.partition("/")
    now = datetime.now(UTC).isoformat()
    try:
        registries.patch_registry(
            namespace, name, {"metadata": {"annotations": {REQUESTED_AT: now}}}
        )
    except Exception as error:  # the leader still polls at its interval
        log.warning("forwarding a webhook for %s: %s", key, str(error).splitlines()[0][:200])

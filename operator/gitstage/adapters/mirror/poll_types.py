"""What pollers hand to subscribers, and what they count."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from gitstage.adapters.git.reader import Registry
from gitstage.adapters.mirror.remote_mirror import Timeouts
from gitstage.domain.policy.rules import PolicyEvaluator


@dataclass(frozen=True)
class Source:
    """A repository to follow: its URL, the branch holding artifacts.yaml, git timeouts."""

    url: str
    branch: str = "main"
    timeouts: Timeouts = field(default_factory=Timeouts)


@dataclass(frozen=True)
class RegistrySnapshot:
    """The registry as of a sync; `changed_at` is when the remote's refs last changed."""

    registry: Registry  # state + config + head
    digest: str  # of the remote's tag and branch refs
    head: str  # branch tip
    changed_at: datetime
    policy: PolicyEvaluator | None = None  # the promotion policy at the tip, if there is one


@dataclass(frozen=True)
class PollError:
    """A failed poll; `last_good` is the snapshot subscribers should keep serving."""

    reason: str  # AuthenticationFailed, SourceUnavailable, BranchNotFound, ...
    message: str  # one line, no secrets
    permanent: bool  # a retry will not fix it (rejected credentials)
    at: datetime
    last_good: RegistrySnapshot | None


Update = RegistrySnapshot | PollError
OnChange = Callable[[Update], Awaitable[None]]


@dataclass(frozen=True)
class PollRecord:
    """One finished poll, for metrics: `outcome` is unchanged, changed or error."""

    url: str  # without userinfo
    seconds: float
    outcome: str
    reason: str | None  # the error's reason when outcome is error


OnPoll = Callable[[PollRecord], None]


@dataclass(frozen=True)
class PollerStats:
    """Counters of one poller (one repository, credentials and branch), for metrics."""

    url: str  # without userinfo
    branch: str
    subscribers: tuple[str, ...]
    interval: float  # seconds between polls: the smallest of the subscribers'
    polls: int
    changes: int
    errors: int
    last_poll_seconds: float | None
    ref_listings: int  # git network operations by kind
    fetches: int
    blob_fetches: int
    in_flight: bool  # a poll is running
    request_pending: bool  # request() arrived; one more poll will run right after
    consecutive_failures: int

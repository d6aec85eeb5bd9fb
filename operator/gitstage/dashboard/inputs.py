"""What a dashboard provider hands the views: one snapshot per followed registry, no I/O.

The operator builds these from its workers' memory (operator/dashboard_feed.py); `gitstage ui`
from the repositories it reads (dashboard/local.py). Text that came from outside (URLs, error
messages) is redacted here, once, by the constructors' callers using `clean_text`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gitstage.domain.policy.rules import SignatureStatus
from gitstage.domain.registry.state import RegistryState
from gitstage.domain.repo_urls import redact, split_userinfo
from gitstage.resources import v1alpha1 as v1

# A tag's signature as verified against the registry's trusted keys; None: not verified.
SignatureCheck = Callable[[str], SignatureStatus | None]

MAX_TEXT = 2000  # an error or event message longer than this is cut: a page, not a log


def clean_text(text: str | None) -> str:
    """URL userinfo dropped and length bounded: safe to show."""
    if not text:
        return ""
    return bounded(redact(text))


def bounded(text: str) -> str:
    """At most MAX_TEXT characters, the cut marked."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def shown_url(url: str) -> str:
    """A repository URL as the pages show it: an HTTP URL's userinfo dropped, any other
    URL's replaced by `***`."""
    return redact(split_userinfo(url)[0])


@dataclass(frozen=True)
class PostedEvent:
    """A Kubernetes Event the operator posted on a ModelRegistry (kept in its memory)."""

    at: datetime
    type: str  # Normal or Warning
    reason: str  # Created, RollingOut, RolledBack, FetchFailed, ...
    message: str


@dataclass(frozen=True)
class RegistrySnapshot:
    """One followed registry: a ModelRegistry (operator) or a repository (`gitstage ui`).

    `key` names it in URLs (`namespace/name`, or the repository key locally); `url` is already
    redacted. `state` is None until the first successful read.
    """

    key: str
    url: str
    branch: str | None = None
    namespace: str | None = None
    state: RegistryState | None = None
    configured_stages: list[str] | None = None
    head: str | None = None
    changed_at: str | None = None
    source_error: str = ""
    deployments: tuple[v1.DeploymentState, ...] = ()
    events: tuple[PostedEvent, ...] = ()
    signatures: SignatureCheck | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Snapshot:
    """Everything the pages show at one moment. `cluster`: the operator's, with Deployments;
    `standby`: a standby replica's, which reconciles nothing (no Deployments, no events)."""

    registries: tuple[RegistrySnapshot, ...]
    cluster: bool
    standby: bool = False


class Provider(Protocol):
    """Where the server takes its snapshots from; both calls are cheap and never block on I/O."""

    def snapshot(self) -> Snapshot: ...

    def fingerprint(self) -> Hashable:
        """Changes whenever what a page shows may have changed (drives live updates)."""
        ...

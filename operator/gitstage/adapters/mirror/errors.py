"""Typed, one-line errors of remote git operations; messages never hold secrets or userinfo.

`reason` is the CamelCase word the operator puts in conditions; `permanent` marks errors a retry
will not fix (rejected credentials), which the operator reports as Stalled.
"""

from __future__ import annotations

from collections.abc import Iterable

from gitstage.adapters.git.credentials import REDIRECT_REFUSED, refused_redirect
from gitstage.adapters.git.git_process import failure_reason
from gitstage.domain.repo_urls import redact


class MirrorError(RuntimeError):
    reason = "GitOperationFailed"
    permanent = False

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SourceUnreachable(MirrorError):
    """Connection refused, unknown host, TLS or network failure: retry later."""

    reason = "SourceUnavailable"


class OperationTimedOut(SourceUnreachable):
    """A git operation ran past its timeout and was killed."""


class AuthenticationFailed(MirrorError):
    """401/403, or credentials missing where the server wants them."""

    reason = "AuthenticationFailed"
    permanent = True


class HostKeyUnknown(MirrorError):
    """SSH: the server's host key is not in the known_hosts given (or does not match it)."""

    reason = "HostKeyUnknown"
    permanent = True


class RepositoryNotFound(MirrorError):
    reason = "RepositoryNotFound"


class BranchNotFound(MirrorError):
    reason = "BranchNotFound"


class InvalidSource(MirrorError):
    """A URL or branch name we refuse before running git."""

    reason = "InvalidSource"
    permanent = True


class RegistryUnreadable(MirrorError):
    """The cache synced, but the registry in it cannot be read (e.g. a broken artifacts.yaml)."""

    reason = "RegistryUnreadable"


class InvalidPolicy(MirrorError):
    """The registry synced, but its promotion policy file is invalid: keep the last good one."""

    reason = "InvalidPolicy"


class GitOperationFailed(MirrorError):
    """Anything else git reported, or a cache we cannot read."""


_AUTH = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "error: 401",
    "error: 403",
    "permission denied",
)
_NOT_FOUND = (
    "repository not found",
    "does not appear to be a git repository",
    "error: 404",
)
_UNREACHABLE = (
    "could not resolve host",
    "failed to connect",
    "couldn't connect",
    "connection refused",
    "connection reset",
    "connection timed out",
    "operation timed out",
    "network is unreachable",
    "no route to host",
    "ssl",
    "certificate",  # a server certificate no trusted CA signed (GnuTLS says no "ssl")
    "empty reply from server",
    "the remote end hung up unexpectedly",
)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Redact URL userinfo and every known secret from `text`."""
    clean = redact(text)
    for secret in secrets:
        if secret:
            clean = clean.replace(secret, "***")
    return clean


def classify(operation: str, stderr: str, shown_url: str, secrets: Iterable[str]) -> MirrorError:
    """Map git's stderr to a typed error with a one-line message."""
    text = stderr.lower()
    if "host key verification failed" in text:
        return HostKeyUnknown(f"{operation} {shown_url}: host key is not in the known_hosts given")
    if any(hint in text for hint in _AUTH):
        return AuthenticationFailed(f"{operation} {shown_url}: authentication failed")
    if any(hint in text for hint in _NOT_FOUND) or (
        "repository '" in text and "' not found" in text
    ):
        return RepositoryNotFound(f"{operation} {shown_url}: repository not found")
    if refused_redirect(stderr):
        return SourceUnreachable(f"{operation} {shown_url}: {REDIRECT_REFUSED}")
    detail = failure_reason(scrub(stderr, secrets))
    if any(hint in text for hint in _UNREACHABLE):
        return SourceUnreachable(f"{operation} {shown_url}: cannot reach the server: {detail}")
    return GitOperationFailed(f"{operation} {shown_url} failed: {detail}")

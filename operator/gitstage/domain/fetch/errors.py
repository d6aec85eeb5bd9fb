"""Why a fetch failed, as exception classes that carry the documented exit code.

Messages are one line and never contain credentials: callers redact URLs before raising.
"""

from __future__ import annotations

from typing import ClassVar


class FetchError(Exception):
    """Any expected fetch failure; `exit_code` is what `gitstage fetch` exits with."""

    exit_code: ClassVar[int] = 1


class BadInputError(FetchError):
    """Malformed arguments, artifacts.yaml, DVC files or links; DEST owned by something else."""

    exit_code = 2


class NotFoundError(FetchError, LookupError):
    """Missing commit, artifact, path or DVC object."""

    exit_code = 3


class UnsafePathError(FetchError):
    """An absolute path, `..`, or a symlink leading out of the repository or artifact."""

    exit_code = 4


class TransportError(FetchError):
    """Authentication refused, host unreachable, connection lost."""

    exit_code = 5


class IntegrityError(FetchError):
    """A checksum mismatch, or the size limit was reached."""

    exit_code = 6


class UnsupportedError(FetchError):
    """Content this build cannot fetch: git-lfs objects, submodules, S3 without boto3, DVC 2."""

    exit_code = 7


EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "fetched, or already up to date"),
    (1, "unexpected failure (local I/O)"),
    (BadInputError.exit_code, "usage or malformed input (arguments, artifacts.yaml, DVC files)"),
    (NotFoundError.exit_code, "commit, artifact, path or DVC object not found"),
    (UnsafePathError.exit_code, "unsafe path: absolute, '..', or a symlink escaping"),
    (TransportError.exit_code, "authentication or network failure"),
    (IntegrityError.exit_code, "checksum mismatch or size limit exceeded"),
    (UnsupportedError.exit_code, "unsupported content (git-lfs, submodule, S3 without boto3)"),
)

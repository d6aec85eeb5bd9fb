"""Blob sizes from the object header, so that a blob is read into memory only within a bound.

libgit2 inflates a whole object to look it up: a 300 MB blob costs 300 MB before any size check
on its data could refuse it. The header (type and size) is read without inflating the content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitstage.adapters.git.refdb import RepositoryError

if TYPE_CHECKING:
    import pygit2


class BlobTooLargeError(RepositoryError):
    """A blob over the bound its reader allows (one line)."""


def blob_size(repo: pygit2.Repository, oid: pygit2.Oid | str) -> int | None:
    """The size of the blob `oid`; None when it is absent (a blobless cache) or not a blob."""
    import pygit2  # the reader's callers import it only once an object is read from git

    try:
        kind, size = repo.odb.read_header(oid)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return int(size) if kind == pygit2.enums.ObjectType.BLOB else None


def read_blob(
    repo: pygit2.Repository, oid: pygit2.Oid | str, limit: int, what: str
) -> bytes | None:
    """The blob's bytes when it is at most `limit` bytes; None when absent or not a blob."""
    size = blob_size(repo, oid)
    if size is None:
        return None
    if size > limit:
        raise BlobTooLargeError(f"{what} is {size} bytes, over the limit of {limit}")
    import pygit2

    blob = repo.get(oid)
    return bytes(blob.data) if isinstance(blob, pygit2.Blob) else None

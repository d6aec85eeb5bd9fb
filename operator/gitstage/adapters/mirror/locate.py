"""Where a read command finds a repository: a local path as is, a URL through the remote mirror.

GTO clones any `--repo` that is not an existing path; gitstage syncs the same persistent
blobless mirror the operator polls (tags, commits and trees, plus the few blobs GTO reads) and
reads it in place, so a second read of an unchanged remote costs one ref listing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitstage.adapters.mirror.remote_mirror import RemoteMirror

# scheme://..., or scp-like user@host:path (a Windows drive letter is not a host)
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[^@/:\s]+@[^/:\s]+:)")


def is_url(repo: str | os.PathLike[str]) -> bool:
    """A URL that is not also an existing path (an existing path always wins, as in GTO)."""
    text = os.fspath(repo)
    return not os.path.exists(text) and bool(_URL.match(text))


@dataclass(frozen=True)
class ReadTarget:
    """A local repository to read: the given path, or the synced mirror of a URL."""

    path: str
    mirror: RemoteMirror | None = None


def open_for_read(repo: str | os.PathLike[str]) -> ReadTarget:
    """Raises MirrorError (one line, no credentials) when the remote cannot be read."""
    if not is_url(repo):
        return ReadTarget(os.fspath(repo))
    from gitstage.adapters.mirror.remote_mirror import synced_mirror

    mirror = synced_mirror(os.fspath(repo))
    return ReadTarget(str(mirror.path), mirror)


def readable_path(repo: str | os.PathLike[str]) -> str:
    return open_for_read(repo).path

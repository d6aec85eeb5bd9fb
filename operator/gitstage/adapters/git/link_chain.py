"""From (repository, revision, artifact) to the commit and path that hold the bytes.

Links (domain/fetch/links.py) are followed across repositories, each at its own pinned revision.
Credentials from the environment are sent only to the origin of the requested repository, so
a link written in artifacts.yaml cannot make gitstage hand them to another host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.shallow_fetch import FetchedCommit, fetch_commit
from gitstage.domain.fetch.errors import BadInputError
from gitstage.domain.fetch.limits import Deadline
from gitstage.domain.fetch.links import MAX_LINK_DEPTH, ArtifactLink
from gitstage.domain.fetch.manifest import SourceRecord
from gitstage.domain.fetch.plan import artifact_entry
from gitstage.domain.fetch.repo_paths import safe_relative
from gitstage.domain.repo_urls import redact, same_origin, split_userinfo


@dataclass(frozen=True)
class Chain:
    """The repository that holds the bytes, the path there, and every repository visited."""

    fetched: FetchedCommit
    path: PurePosixPath
    sources: list[SourceRecord]


@dataclass(frozen=True)
class Hop:
    """A repository to visit: what to fetch there, and the credentials it may receive."""

    url: str
    rev: str
    artifact: str | None  # None only with a path
    path: str | None
    credentials: GitCredentials | None


def follow(
    start: Hop, workdir: Path, environ: Mapping[str, str], deadline: Deadline | None = None
) -> Chain:
    """Every hop's shallow fetch ends by the same `deadline`."""
    hop = start
    sources: list[SourceRecord] = []
    seen: set[tuple[str, str, str, str | None]] = set()
    for _ in range(MAX_LINK_DEPTH + 1):
        fetched = fetch_commit(
            hop.url,
            hop.rev,
            workdir,
            credentials=hop.credentials,
            environ=environ,
            deadline=deadline,
        )
        shown = redact(hop.url)
        if hop.path is not None:
            target = safe_relative(hop.path, "path")
            sources.append(
                SourceRecord(
                    repo=shown, commit=fetched.commit, artifact=hop.artifact, path=target.as_posix()
                )
            )
            return Chain(fetched, target, sources)
        assert hop.artifact is not None  # a hop without a path names an artifact
        entry = artifact_entry(fetched.tree, hop.artifact, f"{shown} at {fetched.commit[:12]}")
        path = None if entry.path is None else entry.path.as_posix()
        sources.append(
            SourceRecord(repo=shown, commit=fetched.commit, artifact=hop.artifact, path=path)
        )
        if entry.link is None:
            assert entry.path is not None
            return Chain(fetched, entry.path, sources)
        link = entry.link
        key = (link.repo, link.rev, link.artifact or hop.artifact, link.path)
        if key in seen:
            raise BadInputError(
                f"artifact {start.artifact!r}: links form a cycle at {redact(link.repo)}"
            )
        seen.add(key)
        hop = _next_hop(link, hop.artifact, start)
    raise BadInputError(f"artifact {start.artifact!r}: more than {MAX_LINK_DEPTH} links to follow")


def _next_hop(link: ArtifactLink, artifact: str, start: Hop) -> Hop:
    clean, user, password = split_userinfo(link.repo)
    name = link.artifact or artifact
    if password is not None:
        return Hop(clean, link.rev, name, link.path, GitCredentials(user, password))
    allowed = start.credentials if same_origin(clean, start.url) else None
    return Hop(clean, link.rev, name, link.path, allowed)

"""Which blobs the registry reader needs, and which a blobless cache lacks.

The reader reads the index file at HEAD and at the commit of every annotated GTO tag; the
policy reader reads `.gto`, `.gitstage/policy.yaml` and the trusted keys it names at HEAD. A
`--filter=blob:none` fetch brings commits and trees but no blob, and libgit2 cannot fetch a
missing object on demand (it just does not find it), so these blobs must be fetched first.
The refs are given as listed by the remote: the cache's refs move only once the blobs are in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pygit2

from gitstage.adapters.git.blobs import BlobTooLargeError, read_blob
from gitstage.adapters.git.reader import read_config
from gitstage.domain.policy.rules import POLICY_FILE, PolicyFileError, parse_policy
from gitstage.domain.registry.files import CONFIG_FILE
from gitstage.domain.registry.tags import Action, parse_tag
from gitstage.domain.yaml_bounds import MAX_BYTES


def missing_index_blobs(path: Path, tags: Mapping[str, str], head: str) -> list[str]:
    """SHAs of index-file blobs at `head` and at GTO tag commits that are not in the cache."""
    repo = pygit2.Repository(str(path))
    index_file = read_config(repo).index
    wanted: set[str] = set()
    for commit in _commits_read_by_registry(repo, tags, head):
        blob = _blob_at(commit, index_file)
        if blob is not None:
            wanted.add(blob)
    wanted.update(_policy_blobs(repo, repo[head].peel(pygit2.Commit)))
    return sorted(sha for sha in wanted if sha not in repo)


def _policy_blobs(repo: pygit2.Repository, head: pygit2.Commit) -> set[str]:
    """`.gto`, the policy file and, once the policy is in the cache, the key files it names.

    A policy whose blob is missing would read as "no policy": so it is fetched like the index,
    and the key files in a second round (their paths are only known from the policy's text).
    """
    paths = [CONFIG_FILE, POLICY_FILE]
    policy = _blob_at(head, POLICY_FILE)
    if policy is not None and policy in repo:
        try:
            data = read_blob(repo, policy, MAX_BYTES, POLICY_FILE) or b""
            parsed = parse_policy(data.decode("utf-8"))
            paths += [parsed.allowed_signers, parsed.gpg_keyring]
        except (BlobTooLargeError, UnicodeDecodeError, PolicyFileError):
            pass  # reported by the policy reader, in its words
    return {sha for sha in (_blob_at(head, path) for path in paths) if sha is not None}


def _commits_read_by_registry(
    repo: pygit2.Repository, tags: Mapping[str, str], head: str
) -> list[pygit2.Commit]:
    commits = {head: repo[head].peel(pygit2.Commit)}
    for name, sha in tags.items():
        parsed = parse_tag(name)
        if parsed is None or parsed.action is Action.CREATE:
            continue
        target = repo[sha]
        if not isinstance(target, pygit2.Tag):
            continue  # lightweight: GTO drops it, the reader never reads its commit
        try:
            commit = target.peel(pygit2.Commit)
        except (ValueError, pygit2.GitError):
            continue  # a tag of a tree or blob: no index to read
        commits[str(commit.id)] = commit
    return list(commits.values())


def _blob_at(commit: pygit2.Commit, index_file: str) -> str | None:
    try:
        entry = commit.tree[index_file]
    except KeyError:
        return None
    return str(entry.id) if entry.type_str == "blob" else None

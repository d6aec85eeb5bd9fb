"""`gitstage ui`'s provider: registries read from paths and URLs, without a cluster.

Each repository is read like `gitstage show -r REPO`: a path in place, a URL through the
persistent blobless mirror (an unchanged remote costs one ref listing per refresh). A refresh
re-reads a registry only when its tags, HEAD or `.gto` changed. Signed tags are verified
against the keys the registry trusts at HEAD (the promotion policy's files, or the defaults),
each tag object once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field, replace

from gitstage.adapters.git.incremental import IncrementalReader
from gitstage.adapters.git.policy_reader import (
    TagSignatures,
    gto_stages_at_head,
    read_policy,
    read_trust,
    trust_files,
)
from gitstage.adapters.git.reader import Registry
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.adapters.git.signatures import SigningError
from gitstage.adapters.git.source import RegistrySource, open_source
from gitstage.adapters.mirror.errors import MirrorError
from gitstage.adapters.mirror.locate import ReadTarget, is_url, open_for_read
from gitstage.dashboard.inputs import RegistrySnapshot, Snapshot, clean_text, shown_url
from gitstage.domain.policy.rules import Policy, PolicyFileError, SignatureStatus
from gitstage.domain.policy.tag_signature import signature_offset
from gitstage.domain.registry.config import WrongConfigError
from gitstage.domain.registry.index import CorruptIndexError
from gitstage.domain.registry.state import RegistryError
from gitstage.domain.repo_urls import redact, repository_key

READ_ERRORS = (RepositoryError, MirrorError, WrongConfigError, CorruptIndexError, RegistryError)


class UnreadableRepository(RuntimeError):
    """The first read of a repository failed; one line, no credentials."""


@dataclass
class _Followed:
    """One `-r` repository: where it is read from, and what was read last."""

    given: str
    target: ReadTarget | None = None
    digest: str | None = None
    snapshot: RegistrySnapshot | None = None
    reader: IncrementalReader = field(default_factory=IncrementalReader)


class LocalProvider:
    """Implements the dashboard's `Provider` over repositories; `refresh` does the I/O."""

    def __init__(self, repositories: list[str]) -> None:
        self._followed = [_Followed(repo) for repo in dict.fromkeys(repositories)]
        self._lock = threading.Lock()

    def start(self) -> None:
        """The first read of every repository; raises UnreadableRepository on any failure."""
        for followed in self._followed:
            try:
                self._read(followed)
            except READ_ERRORS as error:
                raise UnreadableRepository(f"{_shown(followed.given)}: {_line(error)}") from None

    def refresh(self) -> None:
        """Re-read what changed; a failure shows on the pages beside the last good state."""
        for followed in self._followed:
            try:
                self._read(followed)
            except READ_ERRORS as error:
                self._failed(followed, _line(error))

    async def follow(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)  # the refresh interval, not a wait for a condition
            await asyncio.to_thread(self.refresh)

    def snapshot(self) -> Snapshot:
        with self._lock:
            found = tuple(f.snapshot for f in self._followed if f.snapshot is not None)
        return Snapshot(found, cluster=False)

    def fingerprint(self) -> Hashable:
        with self._lock:
            return tuple(
                (f.digest, f.snapshot.source_error if f.snapshot else None) for f in self._followed
            )

    def _read(self, followed: _Followed) -> None:
        if followed.target is None:
            followed.target = open_for_read(followed.given)
        elif followed.target.mirror is not None:
            followed.target.mirror.sync()
        path = followed.target.path
        source = open_source(path, followed.reader.packed_refs)
        digest = _digest(source)
        if digest == followed.digest and followed.snapshot and not followed.snapshot.source_error:
            return
        registry = followed.reader.read(source)
        signatures = verified_signatures(followed.target, registry, source.tags)
        snapshot = RegistrySnapshot(
            key=repository_key(followed.given),
            url=_shown(followed.given),
            state=registry.state,
            configured_stages=registry.config.stages,
            head=registry.head,
            signatures=signatures.get,
        )
        with self._lock:
            followed.digest, followed.snapshot = digest, snapshot

    def _failed(self, followed: _Followed, message: str) -> None:
        with self._lock:
            before = followed.snapshot or RegistrySnapshot(
                key=repository_key(followed.given), url=_shown(followed.given)
            )
            followed.snapshot = replace(before, source_error=clean_text(message))


def verified_signatures(
    target: ReadTarget, registry: Registry, tags: dict[str, str]
) -> dict[str, SignatureStatus]:
    """Every signed tag, verified against the keys trusted at HEAD; {} when none can be."""
    signed = {
        e.tag
        for e in registry.state.events()
        if e.tag is not None and signature_offset(e.message.encode("utf-8")) is not None
    }
    if not signed or registry.head is None:
        return {}
    try:
        git = open_repository(target.path)
        if target.mirror is not None:  # a blobless mirror fetches the key files first
            for file in trust_files(git):
                target.mirror.ensure_blob("HEAD", file)
            git = open_repository(target.path)
        policy = read_policy(git, gto_stages_at_head(git)) or Policy()
        trust = read_trust(git, policy)
        if trust.allowed_signers is None and trust.gpg_keyring is None:
            return {}  # no trusted key: nothing to verify against
        lookup = TagSignatures(target.path, trust, tags)
        return {tag: lookup(tag) for tag in sorted(signed)}
    except (PolicyFileError, SigningError, RepositoryError, MirrorError):
        return {}  # shown as "signed, not verified"


def _digest(source: RegistrySource) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, oid in sorted(source.tags.items()):
        digest.update(f"{name}\0{oid}\n".encode())
    digest.update(f"HEAD {source.head_oid}\n".encode())
    digest.update((source.config_text or "").encode())
    return digest.hexdigest()


def _shown(repo: str) -> str:
    """A URL without its userinfo, or a path made absolute."""
    return shown_url(repo) if is_url(repo) else os.path.abspath(repo)


def _line(error: Exception) -> str:
    text = str(error).strip()
    return redact(text.splitlines()[0]) if text else type(error).__name__

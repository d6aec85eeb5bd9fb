"""Read the promotion policy and its trusted keys from the registry's HEAD commit, and verify
tag signatures on demand for the policy's evaluator.

The policy is read from a commit, never from a work tree: what counts is what was pushed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping

import pygit2

from gitstage.adapters.git.blobs import BlobTooLargeError, read_blob
from gitstage.adapters.git.reader import TAGS_PREFIX, Registry
from gitstage.adapters.git.signatures import (
    SigningError,
    TrustStore,
    tag_signature,
    verify_signature,
)
from gitstage.domain.policy.rules import (
    POLICY_FILE,
    AssignmentViolation,
    Policy,
    PolicyEvaluator,
    PolicyFileError,
    SignatureKind,
    SignatureStatus,
    assignment_violations,
    parse_policy,
    tags_needing_signatures,
)
from gitstage.domain.registry.config import RegistryConfig, WrongConfigError, parse_config
from gitstage.domain.registry.files import CONFIG_FILE
from gitstage.domain.registry.state import RegistryState
from gitstage.domain.yaml_bounds import MAX_BYTES

# Tag objects never change: a verification holds as long as the trusted keys do.
_VERIFIED: dict[tuple[str, str], SignatureStatus] = {}
_VERIFIED_LIMIT = 10_000
_LOCK = threading.Lock()
KEY_FILE_LIMIT = 16 * 1024 * 1024  # an allowed_signers file or a keyring of many keys


def blob_at_head(repo: pygit2.Repository, path: str, limit: int = MAX_BYTES) -> bytes | None:
    """The file at HEAD; None without one. BlobTooLargeError over `limit` bytes, before the
    blob is read; PolicyFileError when a blobless cache lacks it (never read as "no file")."""
    if repo.head_is_unborn:
        return None
    try:
        entry = repo.head.peel(pygit2.Commit).tree[path]
    except KeyError:
        return None
    if entry.type_str != "blob":
        return None
    data = read_blob(repo, entry.id, limit, f"{path} at HEAD")
    if data is None:
        raise PolicyFileError(f"{path} at HEAD is missing from the local cache")
    return data


def read_policy(repo: pygit2.Repository, gto_stages: list[str] | None) -> Policy | None:
    """The policy at HEAD (with `.gto`'s stages when it names none); None without a policy file.

    Raises PolicyFileError for an invalid file.
    """
    try:
        data = blob_at_head(repo, POLICY_FILE)
    except BlobTooLargeError as error:
        raise PolicyFileError(str(error)) from None
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyFileError("not UTF-8 text") from None
    return parse_policy(text).with_gto_stages(gto_stages)


def read_trust(repo: pygit2.Repository, policy: Policy) -> TrustStore:
    try:
        return TrustStore(
            allowed_signers=blob_at_head(repo, policy.allowed_signers, KEY_FILE_LIMIT),
            gpg_keyring=blob_at_head(repo, policy.gpg_keyring, KEY_FILE_LIMIT),
        )
    except BlobTooLargeError as error:
        raise PolicyFileError(str(error)) from None


def config_at_head(repo: pygit2.Repository, environ: Mapping[str, str]) -> RegistryConfig:
    """`.gto` as committed at HEAD (a bare mirror or a remote copy has no work tree)."""
    try:
        data = blob_at_head(repo, CONFIG_FILE)
        text = data.decode("utf-8") if data else None
    except BlobTooLargeError as error:
        raise WrongConfigError(CONFIG_FILE, str(error)) from None
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text ({error.reason} at byte {error.start})"
        raise WrongConfigError(CONFIG_FILE, reason) from None
    return parse_config(text, CONFIG_FILE, environ)


class TagSignatures:
    """A `SignatureLookup`: verifies a tag when first asked, each tag object once per set of
    trusted keys (the cache outlives this object: tag objects never change).

    `tags` maps the tags that may be asked about to their tag object ids, taken when the
    registry was read, so a later fetch into the same repository changes nothing here. Safe to
    call from several threads: each verification opens its own repository handle.
    """

    def __init__(self, path: str, trust: TrustStore, tags: Mapping[str, str]) -> None:
        self._path = path
        self._trust = trust
        self._tags = dict(tags)
        digest = hashlib.sha256()
        for part in (trust.allowed_signers, trust.gpg_keyring):
            digest.update(b"-" if part is None else b"+%d:" % len(part) + part)
        self._trust_key = digest.hexdigest()
        # For tests and benchmarks: tag objects checked (cache misses), and of those, the signed
        # ones (each costs `ssh-keygen` or `gpgv` runs; an unsigned tag costs one object read).
        self.verified = 0
        self.signed = 0

    def __call__(self, tag: str) -> SignatureStatus:
        oid = self._tags.get(tag)
        if oid is None:
            return SignatureStatus(SignatureKind.UNSIGNED, detail="no such tag")
        key = (oid, self._trust_key)
        with _LOCK:
            cached = _VERIFIED.get(key)
        if cached is not None:
            return cached
        try:
            status = self._verify(oid)
        except SigningError as error:  # a missing or hung tool: refuse now, retry next time
            return SignatureStatus(SignatureKind.INVALID, detail=str(error))
        with _LOCK:
            if len(_VERIFIED) >= _VERIFIED_LIMIT:
                _VERIFIED.clear()
            _VERIFIED[key] = status
            self.verified += 1
            self.signed += status.kind is not SignatureKind.UNSIGNED
        return status

    def cached(self, tag: str) -> SignatureStatus | None:
        """The tag's status if it was verified already; never verifies (the dashboard asks)."""
        oid = self._tags.get(tag)
        if oid is None:
            return None
        with _LOCK:
            return _VERIFIED.get((oid, self._trust_key))

    def _verify(self, oid: str) -> SignatureStatus:
        kind, raw = pygit2.Repository(self._path).odb.read(oid)
        if kind != pygit2.enums.ObjectType.TAG:
            return SignatureStatus(SignatureKind.UNSIGNED, detail="lightweight tag")
        return verify_signature(raw, self._trust)


def tag_signatures(repo: pygit2.Repository, state: RegistryState, policy: Policy) -> TagSignatures:
    """A lookup for the tags that may need verifying: assignments to stages that ask for it."""
    tags: dict[str, str] = {}
    for name in tags_needing_signatures(state, policy):
        ref = repo.references.get(TAGS_PREFIX + name)
        if ref is not None:  # else deleted since the read: the lookup says "no such tag"
            tags[name] = str(ref.target)
    return TagSignatures(repo.path, read_trust(repo, policy), tags)


def policy_evaluator(
    repo: pygit2.Repository, state: RegistryState, gto_stages: list[str] | None
) -> PolicyEvaluator | None:
    """The registry's policy over `state`; None without a policy file.

    Raises PolicyFileError for an invalid file.
    """
    policy = read_policy(repo, gto_stages)
    if policy is None:
        return None
    return PolicyEvaluator(state, policy, tag_signatures(repo, state, policy))


def gto_stages_at_head(repo: pygit2.Repository) -> list[str] | None:
    """`.gto`'s `stages` as committed at HEAD (a bare mirror has no work tree to read it from)."""
    return config_at_head(repo, os.environ).stages


def policy_violations(repo: pygit2.Repository, registry: Registry) -> list[AssignmentViolation]:
    """Every assignment in history that breaks the policy at HEAD (`gitstage check`)."""
    policy = read_policy(repo, registry.config.stages)
    if policy is None:
        return []
    signatures = tag_signatures(repo, registry.state, policy)
    return assignment_violations(registry.state, policy, signatures)


def promotion_signature(repo: pygit2.Repository, tag: str) -> SignatureStatus:
    """Tag `tag` verified against the keys the registry trusts at HEAD: the policy's key files,
    or the default ones (.gitstage/allowed_signers, .gitstage/keyring.gpg) without a policy."""
    policy = read_policy(repo, gto_stages_at_head(repo)) or Policy()
    return tag_signature(repo, tag, read_trust(repo, policy))


def trust_files(repo: pygit2.Repository) -> list[str]:
    """The files `promotion_signature` reads at HEAD (a blobless mirror fetches them first)."""
    policy = read_policy(repo, gto_stages_at_head(repo)) or Policy()
    return [policy.allowed_signers, policy.gpg_keyring]

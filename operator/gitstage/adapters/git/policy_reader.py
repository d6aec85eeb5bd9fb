"""Read the promotion policy and its trusted keys from the registry's HEAD commit, verify the
signatures it asks for, and read a registry with policy-violating assignments left out.

The policy is read from a commit, never from a work tree: what counts is what was pushed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import pygit2

from gitstage.adapters.git.reader import (
    GitCommitSource,
    Registry,
    open_repository,
    read_config,
    scan_tags,
)
from gitstage.adapters.git.signatures import TrustStore, tag_signature
from gitstage.domain.policy import (
    POLICY_FILE,
    AssignmentViolation,
    Policy,
    SignatureStatus,
    assignment_violations,
    parse_policy,
    tags_needing_signatures,
)
from gitstage.domain.state import RegistryState, build_state

# Tag objects never change: a verification holds as long as the trusted keys do.
_VERIFIED: dict[tuple[str, str], SignatureStatus] = {}
_VERIFIED_LIMIT = 10_000


def blob_at_head(repo: pygit2.Repository, path: str) -> bytes | None:
    if repo.head_is_unborn:
        return None
    try:
        entry = repo.head.peel(pygit2.Commit).tree[path]
    except KeyError:
        return None
    blob = repo.get(entry.id)
    return blob.data if isinstance(blob, pygit2.Blob) else None


def read_policy(repo: pygit2.Repository, gto_stages: list[str] | None) -> Policy | None:
    """The policy at HEAD (with `.gto`'s stages when it names none); None without a policy file.

    Raises PolicyFileError for an invalid file.
    """
    data = blob_at_head(repo, POLICY_FILE)
    if data is None:
        return None
    return parse_policy(data.decode("utf-8")).with_gto_stages(gto_stages)


def read_trust(repo: pygit2.Repository, policy: Policy) -> TrustStore:
    return TrustStore(
        allowed_signers=blob_at_head(repo, policy.allowed_signers),
        gpg_keyring=blob_at_head(repo, policy.gpg_keyring),
    )


def signature_statuses(
    repo: pygit2.Repository, state: RegistryState, policy: Policy
) -> dict[str, SignatureStatus]:
    """Verify the tags of assignments to stages whose rule asks for a signature."""
    trust = read_trust(repo, policy)
    digest = hashlib.sha256()
    for part in (trust.allowed_signers, trust.gpg_keyring):
        digest.update(b"-" if part is None else b"+%d:" % len(part) + part)
    trust_key = digest.hexdigest()
    statuses: dict[str, SignatureStatus] = {}
    for name in tags_needing_signatures(state, policy):
        oid = repo.references[f"refs/tags/{name}"].target
        key = (str(oid), trust_key)
        if key not in _VERIFIED:
            if len(_VERIFIED) >= _VERIFIED_LIMIT:
                _VERIFIED.clear()
            _VERIFIED[key] = tag_signature(repo, name, trust)
        statuses[name] = _VERIFIED[key]
    return statuses


@dataclass
class PolicedRegistry:
    """A registry read under its policy: `registry` leaves violating assignments out, so the
    previous holder of a stage keeps it; `violations` says which tags were left out and why."""

    registry: Registry
    policy: Policy | None
    violations: list[AssignmentViolation] = field(default_factory=list)


def policy_violations(repo: pygit2.Repository, registry: Registry) -> list[AssignmentViolation]:
    policy = read_policy(repo, registry.config.stages)
    if policy is None:
        return []
    return assignment_violations(
        registry.state, policy, signature_statuses(repo, registry.state, policy)
    )


def read_registry_under_policy(path: str | os.PathLike[str] = ".") -> PolicedRegistry:
    """Like `read_registry`, but assignments that violate the policy do not take effect."""
    repo = open_repository(path)
    config = read_config(repo)
    source = GitCommitSource(repo, config.index)
    scan = scan_tags(repo)
    state = build_state(scan.annotated, source, scan.reserved)
    registry = Registry(state=state, config=config, head=source.head)
    policy = read_policy(repo, config.stages)
    if policy is None:
        return PolicedRegistry(registry, None)
    violations = assignment_violations(state, policy, signature_statuses(repo, state, policy))
    if violations:
        left_out = {v.tag for v in violations}
        kept = [(parsed, tag) for parsed, tag in scan.annotated if parsed.name not in left_out]
        registry = Registry(
            state=build_state(kept, source, scan.reserved), config=config, head=source.head
        )
    return PolicedRegistry(registry, policy, violations)

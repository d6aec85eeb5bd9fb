"""Promotion policy, beyond GTO: which stages exist, which must come first, who must sign.

`.gitstage/policy.yaml`, read from the registry's default branch (committed, never a work tree):

    stages: [dev, staging, prod]        # optional; default: .gto's `stages` (then any stage)
    allowed_signers: .gitstage/allowed_signers   # SSH allowed_signers file (this is the default)
    gpg_keyring: .gitstage/keyring.gpg           # OpenPGP public keys, binary or armored (default)
    rules:
      staging:
        requires: [dev]                 # the version was active in dev at or before this time
      prod:
        requires: [staging]
        signed_by: [release@example.com]   # SSH principals or GPG fingerprints; "*" = any trusted

A second file rather than a section of `.gto`: GTO refuses unknown keys in `.gto`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gitstage.domain.events import Event, EventKind
from gitstage.domain.names import check_name
from gitstage.domain.state import RegistryState, newest_first

POLICY_FILE = ".gitstage/policy.yaml"
DEFAULT_ALLOWED_SIGNERS = ".gitstage/allowed_signers"
DEFAULT_GPG_KEYRING = ".gitstage/keyring.gpg"
ANY_SIGNER = "*"


class PolicyFileError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid {POLICY_FILE}: {reason}")


class StageRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    requires: list[str] = Field(default_factory=list)
    signed_by: list[str] = Field(default_factory=list)

    @field_validator("requires")
    @classmethod
    def _stage_names(cls, values: list[str]) -> list[str]:
        for value in values:
            check_name(value, "stage name")
        return values


class Policy(BaseModel):
    """`stages` is the policy's own list, else `.gto`'s (see `with_gto_stages`), else None."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: list[str] | None = None
    allowed_signers: str = DEFAULT_ALLOWED_SIGNERS
    gpg_keyring: str = DEFAULT_GPG_KEYRING
    rules: dict[str, StageRule] = Field(default_factory=dict)
    stages_from: str = POLICY_FILE

    @field_validator("stages")
    @classmethod
    def _stages(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            check_name(value, "stage name")
        return values

    @field_validator("rules")
    @classmethod
    def _rule_stages(cls, rules: dict[str, StageRule]) -> dict[str, StageRule]:
        for stage in rules:
            check_name(stage, "stage name")
        return rules

    def with_gto_stages(self, gto_stages: list[str] | None) -> Policy:
        """`.gto`'s `stages` still applies when the policy names none."""
        if self.stages is not None or gto_stages is None:
            return self
        return self.model_copy(update={"stages": list(gto_stages), "stages_from": ".gto"})

    def needs_signature(self, stage: str) -> bool:
        rule = self.rules.get(stage)
        return rule is not None and bool(rule.signed_by)


def parse_policy(text: str) -> Policy:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        raise PolicyFileError("not valid YAML") from None
    if loaded is None:
        return Policy()
    if not isinstance(loaded, dict):
        raise PolicyFileError("expected a mapping")
    if "stages_from" in loaded:
        raise PolicyFileError("unknown key 'stages_from'")
    try:
        return Policy.model_validate(loaded)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PolicyFileError(f"{where}: {first['msg']}") from None


class SignatureKind(Enum):
    UNSIGNED = "unsigned"
    INVALID = "invalid"
    VALID = "valid"


@dataclass(frozen=True)
class SignatureStatus:
    """A tag's signature as verified: by whom (SSH principals or GPG fingerprints), or why not."""

    kind: SignatureKind
    signers: tuple[str, ...] = ()
    detail: str = ""


UNSIGNED = SignatureStatus(SignatureKind.UNSIGNED)


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"policy {self.rule}: {self.message}"


def policy_violation(  # noqa: PLR0917 - the operator's call shape: state, policy, what, who
    state: RegistryState,
    policy: Policy,
    artifact: str,
    stage: str,
    assignment: Event,
    signature: SignatureStatus,
    *,
    ignored: frozenset[str] = frozenset(),
) -> Violation | None:
    """Why `assignment` (an Assignment event of `artifact` to `stage`) breaks `policy`, or None.

    Required stages are looked up on the assignment's commit (GTO ties stage tags to versions by
    commit) among the assignments and unassignments dated at or before it; assignment tags named
    in `ignored` (themselves violations) do not count.
    """
    where = f"tag {assignment.tag}" if assignment.tag else f"assignment of {artifact}"
    if policy.stages is not None and stage not in policy.stages:
        allowed = ", ".join(policy.stages) or "none"
        return Violation(
            "stages",
            f"{where}: stage '{stage}' is not allowed by {policy.stages_from} (allowed: {allowed})",
        )
    rule = policy.rules.get(stage)
    if rule is None:
        return None
    for required in rule.requires:
        if not was_active(
            state, artifact, assignment.commit, required, until=assignment, ignored=ignored
        ):
            return Violation(
                f"rules.{stage}.requires",
                f"{where}: version {assignment.version or assignment.commit[:7]} of {artifact} "
                f"was never in stage '{required}' before its assignment to '{stage}'",
            )
    if rule.signed_by:
        return _signature_violation(rule, stage, where, signature)
    return None


def _signature_violation(
    rule: StageRule, stage: str, where: str, signature: SignatureStatus
) -> Violation | None:
    name = f"rules.{stage}.signed_by"
    wanted = ", ".join(rule.signed_by)
    if signature.kind is SignatureKind.UNSIGNED:
        return Violation(name, f"{where} is not signed; '{stage}' requires a signature by {wanted}")
    if signature.kind is SignatureKind.INVALID:
        detail = f" ({signature.detail})" if signature.detail else ""
        return Violation(name, f"{where} has a signature that does not verify{detail}")
    if ANY_SIGNER in rule.signed_by or set(signature.signers) & set(rule.signed_by):
        return None
    signers = ", ".join(signature.signers) or "an unknown key"
    return Violation(name, f"{where} is signed by {signers}, not by {wanted} as '{stage}' requires")


def was_active(
    state: RegistryState,
    artifact: str,
    commit: str,
    stage: str,
    *,
    until: Event,
    ignored: frozenset[str] = frozenset(),
) -> bool:
    """Was `stage` active on `commit` at any second up to `until`'s (GTO's tie rules apply)?"""
    found = state.artifacts.get(artifact)
    if found is None:
        return False
    limit = until.time.seconds
    assignments: list[Event] = []
    unassignments: list[Event] = []
    for version in found.versions:
        vstage = version.stages.get(stage)
        if version.commit != commit or vstage is None:
            continue
        assignments += [e for e in vstage.assignments if e.tag not in ignored]
        unassignments += vstage.unassignments
    events = [e for e in assignments + unassignments if e.time.seconds <= limit]
    for second in sorted({e.time.seconds for e in events}):
        upto = [e for e in events if e.time.seconds <= second]
        if newest_first(upto)[0].kind is EventKind.ASSIGNMENT:
            return True
    return False


@dataclass(frozen=True)
class AssignmentViolation:
    artifact: str
    stage: str
    version: str
    tag: str
    violation: Violation

    def __str__(self) -> str:
        return str(self.violation)


def assignment_events(state: RegistryState) -> list[Event]:
    """Every assignment in the registry, oldest first (ties by tag name)."""
    events = [
        event
        for artifact in state.artifacts.values()
        for version in artifact.versions
        for vstage in version.stages.values()
        for event in vstage.assignments
    ]
    return sorted(events, key=lambda e: (e.time.seconds, e.tag or ""))


def assignment_violations(
    state: RegistryState,
    policy: Policy,
    signatures: Mapping[str, SignatureStatus],
) -> list[AssignmentViolation]:
    """Check every assignment in time order; a violating one never counts as a prior stage."""
    ignored: set[str] = set()
    found: list[AssignmentViolation] = []
    for event in assignment_events(state):
        tag = event.tag or ""
        status = signatures.get(tag, UNSIGNED)
        violation = policy_violation(
            state,
            policy,
            event.artifact,
            str(event.stage),
            event,
            status,
            ignored=frozenset(ignored),
        )
        if violation is not None:
            ignored.add(tag)
            found.append(
                AssignmentViolation(
                    event.artifact, str(event.stage), str(event.version), tag, violation
                )
            )
    return found


def tags_needing_signatures(state: RegistryState, policy: Policy) -> Iterable[str]:
    """Assignment tags to stages whose rule asks for a signature (only those get verified)."""
    return [
        e.tag for e in assignment_events(state) if e.tag and policy.needs_signature(str(e.stage))
    ]

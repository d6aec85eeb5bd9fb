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

An assignment complies when its stage is allowed, every required stage was active on the same
commit at or before it (counting only assignments that comply themselves), and its tag is signed
by a key the rule names. `gitstage assign` refuses a violating assignment, `gitstage check` lists
every one in history, and the operator does not roll one out. All three word a violation with
`AssignmentViolation.__str__`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gitstage.domain.registry.events import Event, EventKind
from gitstage.domain.registry.names import check_name
from gitstage.domain.registry.state import RegistryState, newest_first
from gitstage.domain.yaml_bounds import YamlBoundsError, safe_load_bounded

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

    @model_validator(mode="after")
    def _no_cycles(self) -> Policy:
        """A stage that requires itself, directly or not, could never be assigned."""
        for stage in self.rules:
            cycle = _cycle_from(self.rules, stage, (stage,))
            if cycle is not None:
                raise ValueError(f"rules: circular requires: {' -> '.join(cycle)}")
        return self

    def with_gto_stages(self, gto_stages: list[str] | None) -> Policy:
        """`.gto`'s `stages` still applies when the policy names none."""
        if self.stages is not None or gto_stages is None:
            return self
        return self.model_copy(update={"stages": list(gto_stages), "stages_from": ".gto"})

    def needs_signature(self, stage: str) -> bool:
        rule = self.rules.get(stage)
        return rule is not None and bool(rule.signed_by)


def _cycle_from(
    rules: dict[str, StageRule], stage: str, path: tuple[str, ...]
) -> tuple[str, ...] | None:
    rule = rules.get(stage)
    for required in rule.requires if rule else []:
        if required == path[0]:
            return (*path, required)
        if required not in path:
            found = _cycle_from(rules, required, (*path, required))
            if found is not None:
                return found
    return None


def parse_policy(text: str) -> Policy:
    try:
        loaded = safe_load_bounded(text, "the policy")
    except YamlBoundsError as error:
        raise PolicyFileError(str(error)) from None
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
        message = str(first["msg"]).removeprefix("Value error, ")
        raise PolicyFileError(f"{where}: {message}" if where else message) from None


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

# Verifies the signature of a tag, by name: the adapter reads the tag object and runs the tools.
SignatureLookup = Callable[[str], SignatureStatus]


@dataclass(frozen=True)
class Violation:
    """Which rule (a key of `source`) an assignment breaks, and how (without naming the tag)."""

    rule: str
    message: str
    source: str = POLICY_FILE


@dataclass(frozen=True)
class AssignmentViolation:
    artifact: str
    stage: str
    version: str
    tag: str
    violation: Violation

    @property
    def subject(self) -> str:
        return f"tag {self.tag}"

    @property
    def detail(self) -> str:
        return f"{self.violation.message} ({self.violation.rule} in {self.violation.source})"

    def __str__(self) -> str:
        """The one wording of a violation: `gitstage check`, `assign` and the operator use it."""
        return f"{self.subject}: {self.detail}"


def violation_of(event: Event, violation: Violation) -> AssignmentViolation:
    version = event.version or event.commit[:7]
    return AssignmentViolation(
        event.artifact, str(event.stage), version, event.tag or "", violation
    )


class PolicyEvaluator:
    """Judges assignments against a policy over one registry state, each tag once.

    Cheap rules first: a signature is verified (through `signatures`, the only I/O) only for an
    assignment that is asked about, to a stage whose rule names signers, and that passes the
    stage and prior-stage rules. The operator asks about stage holders only, so a registry with
    thousands of tags costs a handful of verifications.
    """

    def __init__(self, state: RegistryState, policy: Policy, signatures: SignatureLookup) -> None:
        self.state = state
        self.policy = policy
        self.signatures = signatures
        self._judged: dict[str, Violation | None] = {}

    def violation(self, event: Event, signature: SignatureStatus | None = None) -> Violation | None:
        """Why the assignment `event` breaks the policy, or None.

        `signature` overrides the lookup (a tag being written is not in the repository yet).
        """
        if signature is not None or event.tag is None:
            return self._judge(event, signature)
        if event.tag not in self._judged:
            self._judged[event.tag] = self._judge(event, None)
        return self._judged[event.tag]

    def _judge(self, event: Event, signature: SignatureStatus | None) -> Violation | None:
        stage = str(event.stage)
        policy = self.policy
        if policy.stages is not None and stage not in policy.stages:
            allowed = ", ".join(policy.stages) or "none"
            return Violation(
                "stages",
                f"stage '{stage}' is not allowed (allowed: {allowed})",
                policy.stages_from,
            )
        rule = policy.rules.get(stage)
        if rule is None:
            return None
        for required in rule.requires:
            if not self._was_active(event, required):
                version = event.version or event.commit[:7]
                return Violation(
                    f"rules.{stage}.requires",
                    f"version {version} of {event.artifact} was never in stage '{required}' "
                    f"before its assignment to '{stage}'",
                )
        if not rule.signed_by:
            return None
        if signature is None:
            signature = self.signatures(event.tag) if event.tag else UNSIGNED
        return _signature_violation(rule, stage, signature)

    def _was_active(self, event: Event, stage: str) -> bool:
        """Was `stage` active on the event's commit at any second up to the event's?

        GTO's tie rule applies (an unassignment wins a same-second tie); assignments that break
        the policy themselves do not count. Rules are acyclic, so the recursion ends.
        """
        found = self.state.artifacts.get(event.artifact)
        if found is None:
            return False
        limit = event.time.seconds
        events: list[Event] = []
        for version in found.versions:
            vstage = version.stages.get(stage)
            if version.commit != event.commit or vstage is None:
                continue
            events += [
                e
                for e in vstage.assignments
                if e.time.seconds <= limit and e.tag != event.tag and self.violation(e) is None
            ]
            events += [e for e in vstage.unassignments if e.time.seconds <= limit]
        for second in sorted({e.time.seconds for e in events}):
            upto = [e for e in events if e.time.seconds <= second]
            if newest_first(upto)[0].kind is EventKind.ASSIGNMENT:
                return True
        return False


def _signature_violation(
    rule: StageRule, stage: str, signature: SignatureStatus
) -> Violation | None:
    name = f"rules.{stage}.signed_by"
    wanted = ", ".join(rule.signed_by)
    if signature.kind is SignatureKind.UNSIGNED:
        return Violation(name, f"not signed, but '{stage}' requires a signature by {wanted}")
    if signature.kind is SignatureKind.INVALID:
        detail = f" ({signature.detail})" if signature.detail else ""
        return Violation(name, f"the signature does not verify{detail}")
    if ANY_SIGNER in rule.signed_by or set(signature.signers) & set(rule.signed_by):
        return None
    signers = ", ".join(signature.signers) or "an unknown key"
    return Violation(name, f"signed by {signers}, but '{stage}' requires a signature by {wanted}")


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
    state: RegistryState, policy: Policy, signatures: SignatureLookup
) -> list[AssignmentViolation]:
    """Every assignment in history that breaks the policy (`gitstage check`), oldest first."""
    evaluator = PolicyEvaluator(state, policy, signatures)
    found: list[AssignmentViolation] = []
    for event in assignment_events(state):
        violation = evaluator.violation(event)
        if violation is not None:
            found.append(violation_of(event, violation))
    return found


def tags_needing_signatures(state: RegistryState, policy: Policy) -> Iterable[str]:
    """Assignment tags to stages whose rule asks for a signature (the only ones ever verified)."""
    return [
        e.tag for e in assignment_events(state) if e.tag and policy.needs_signature(str(e.stage))
    ]

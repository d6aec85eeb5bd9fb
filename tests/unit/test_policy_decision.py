"""Binding decisions under a promotion policy: a holder whose assignment breaks it is refused,
the newest compliant holder serves instead, and only the tags that matter are verified.

Registries are real (scratch git repositories read by the reader); signatures come from a
recording lookup, so these tests pin the pure decision. Real signatures: tests/write/test_policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitstage.adapters.git.reader import read_registry
from gitstage.domain.policy.rules import (
    UNSIGNED,
    PolicyEvaluator,
    PolicyFileError,
    SignatureKind,
    SignatureStatus,
    assignment_violations,
    parse_policy,
)
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.plan import Decision, Hold, HoldReason, Refused, decide
from gitstage.workloads.render import Serving
from tests.support.scratch import ScratchRepo, When

TEMPLATE = {"spec": {"containers": [{"name": "s", "image": "i"}]}}
SIGNED_PROD = "rules: {prod: {signed_by: [release]}}"
PROD_AFTER_STAGING = "rules: {prod: {requires: [staging]}}"


def valid(*signers: str) -> SignatureStatus:
    return SignatureStatus(SignatureKind.VALID, signers)


@dataclass
class Lookup:
    """Signature statuses by tag name (unsigned otherwise), recording every tag asked about."""

    statuses: dict[str, SignatureStatus] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, tag: str) -> SignatureStatus:
        self.asked.append(tag)
        return self.statuses.get(tag, UNSIGNED)


@dataclass
class Repo:
    scratch: ScratchRepo
    commits: list[str]
    lookup: Lookup = field(default_factory=Lookup)

    def tag(self, name: str, commit: int, at: int) -> None:
        self.scratch.tag(name, self.commits[commit], When(at))

    def decide(self, policy: str, **target: str) -> Decision:
        """Decide a binding to `stage=` (default prod) or `version=`."""
        state = read_registry(self.scratch.path).state
        evaluator = PolicyEvaluator(state, parse_policy(policy), self.lookup)
        binding = v1.DeploymentBinding.model_validate(
            {"name": "m", "artifact": "m", "template": TEMPLATE, **(target or {"stage": "prod"})}
        )
        return decide(state, binding, v1.Resolution(), evaluator)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """m@v1.0.0 on c1, m@v2.0.0 on c2, m@v3.0.0 on c3; no stage yet."""
    scratch = ScratchRepo(tmp_path / "r")
    commits = [scratch.commit({"a": str(n)}, When(0)) for n in range(3)]
    found = Repo(scratch, commits)
    for n in range(3):
        found.tag(f"m@v{n + 1}.0.0", n, n + 1)
    return found


def refused(decision: Decision) -> Refused:
    assert isinstance(decision, Refused), decision
    return decision


def test_a_forged_unsigned_holder_is_refused_and_the_signed_one_keeps_serving(repo: Repo) -> None:
    repo.tag("m#prod#1", 0, 10)
    repo.tag("m#prod#2", 1, 20)  # the forgery: unsigned
    repo.lookup.statuses["m#prod#1"] = valid("release")
    decision = refused(repo.decide(SIGNED_PROD))
    assert decision.fallback is not None
    fallback = decision.fallback
    assert (fallback.version, fallback.commit, fallback.tag) == (
        "v1.0.0",
        repo.commits[0],
        "m#prod#1",
    )
    [violation] = decision.violations
    assert (violation.tag, violation.version, violation.violation.rule) == (
        "m#prod#2",
        "v2.0.0",
        "rules.prod.signed_by",
    )
    assert decision.message == (
        "tag m#prod#2: not signed, but 'prod' requires a signature by release "
        "(rules.prod.signed_by in .gitstage/policy.yaml); serving v1.0.0 (m#prod#1) instead"
    )
    assert repo.lookup.asked == ["m#prod#2", "m#prod#1"]


def test_wrong_signers_and_bad_signatures_are_refused_too(repo: Repo) -> None:
    repo.tag("m#prod#1", 0, 10)
    repo.tag("m#prod#2", 1, 20)
    repo.tag("m#prod#3", 2, 30)
    repo.lookup.statuses.update(
        {
            "m#prod#1": valid("release"),
            "m#prod#2": SignatureStatus(SignatureKind.INVALID, detail="key not in allowed_signers"),
            "m#prod#3": valid("mallory"),
        }
    )
    decision = refused(repo.decide(SIGNED_PROD))
    assert [str(v) for v in decision.violations] == [
        "tag m#prod#3: signed by mallory, but 'prod' requires a signature by release "
        "(rules.prod.signed_by in .gitstage/policy.yaml)",
        "tag m#prod#2: the signature does not verify (key not in allowed_signers) "
        "(rules.prod.signed_by in .gitstage/policy.yaml)",
    ]
    assert decision.fallback is not None
    assert decision.fallback.version == "v1.0.0"


def test_any_trusted_signer_and_a_compliant_holder_serve_as_gto_says(repo: Repo) -> None:
    repo.tag("m#prod#1", 0, 10)
    repo.tag("m#prod#2", 1, 20)
    repo.lookup.statuses["m#prod#2"] = valid("someone")
    decision = repo.decide("rules: {prod: {signed_by: ['*']}}")
    assert isinstance(decision, Serving)
    assert (decision.version, decision.tag) == ("v2.0.0", "m#prod#2")
    assert repo.lookup.asked == ["m#prod#2"]  # the older holder is never looked at


def test_without_any_compliant_holder_whatever_runs_keeps_running(repo: Repo) -> None:
    repo.tag("m#prod#1", 0, 10)
    decision = refused(repo.decide(SIGNED_PROD))
    assert decision.fallback is None
    assert decision.message.endswith("; no assignment to 'prod' complies with the policy")
    assert decision.as_hold() == Hold(HoldReason.POLICY_VIOLATION, decision.message)


def test_a_forged_tag_on_the_serving_version_changes_nothing_but_is_reported(repo: Repo) -> None:
    repo.tag("m#prod#1", 0, 10)
    repo.tag("m#prod#2", 0, 20)  # forged re-assignment of v1.0.0
    repo.lookup.statuses["m#prod#1"] = valid("release")
    decision = refused(repo.decide(SIGNED_PROD))
    assert decision.fallback is not None
    assert (decision.fallback.version, decision.fallback.tag) == ("v1.0.0", "m#prod#1")
    assert [v.tag for v in decision.violations] == ["m#prod#2"]


def test_a_forged_tag_on_an_unregistered_commit_is_looked_past(repo: Repo) -> None:
    loose = repo.scratch.commit({"a": "loose"}, When(0))
    repo.tag("m#prod#1", 0, 10)
    repo.scratch.tag("m#prod#2", loose, When(20))
    repo.lookup.statuses["m#prod#1"] = valid("release")
    decision = refused(repo.decide(SIGNED_PROD))
    assert decision.violations[0].version == loose
    assert decision.fallback is not None
    assert decision.fallback.version == "v1.0.0"


def test_unassigning_still_rolls_back_to_the_previous_compliant_holder(repo: Repo) -> None:
    repo.tag("m#prod#1", 0, 10)
    repo.tag("m#prod#2", 1, 20)
    repo.tag("m#prod!#3", 1, 30)
    repo.lookup.statuses.update({"m#prod#1": valid("release"), "m#prod#2": valid("release")})
    decision = repo.decide(SIGNED_PROD)
    assert isinstance(decision, Serving)
    assert decision.version == "v1.0.0"


def test_prod_without_staging_is_refused(repo: Repo) -> None:
    repo.tag("m#staging#1", 0, 10)
    repo.tag("m#prod#2", 0, 11)
    repo.tag("m#prod#3", 1, 20)  # v2.0.0 was never in staging
    decision = refused(repo.decide(PROD_AFTER_STAGING))
    assert [str(v) for v in decision.violations] == [
        "tag m#prod#3: version v2.0.0 of m was never in stage 'staging' before its assignment "
        "to 'prod' (rules.prod.requires in .gitstage/policy.yaml)"
    ]
    assert decision.fallback is not None
    assert decision.fallback.version == "v1.0.0"
    assert repo.lookup.asked == []  # no rule asks for signatures


def test_staging_in_the_same_second_counts_but_staging_after_prod_does_not(repo: Repo) -> None:
    repo.tag("m#staging#1", 1, 20)
    repo.tag("m#prod#2", 1, 20)  # same second: `assign staging && assign prod` in one script
    assert isinstance(repo.decide(PROD_AFTER_STAGING), Serving)
    repo.tag("m#prod#3", 2, 30)
    repo.tag("m#staging#4", 2, 31)
    decision = refused(repo.decide(PROD_AFTER_STAGING))
    assert decision.violations[0].tag == "m#prod#3"


def test_having_been_in_staging_counts_but_never_active_does_not(repo: Repo) -> None:
    repo.tag("m#staging#1", 1, 20)
    repo.tag("m#staging!#2", 1, 21)  # left staging again: it still went through staging
    repo.tag("m#prod#3", 1, 30)
    assert isinstance(repo.decide(PROD_AFTER_STAGING), Serving)
    repo.tag("m#staging#4", 2, 40)
    repo.tag("m#staging!#5", 2, 40)  # GTO: the unassignment wins a same-second tie
    repo.tag("m#prod#6", 2, 50)
    assert refused(repo.decide(PROD_AFTER_STAGING)).violations[0].tag == "m#prod#6"


def test_a_staging_assignment_that_breaks_the_policy_does_not_qualify_for_prod(
    repo: Repo,
) -> None:
    policy = "rules: {staging: {signed_by: [qa]}, prod: {requires: [staging]}}"
    repo.tag("m#staging#1", 1, 20)  # unsigned
    repo.tag("m#prod#2", 1, 30)
    decision = refused(repo.decide(policy))
    assert decision.violations[0].violation.rule == "rules.prod.requires"
    repo.lookup.statuses["m#staging#1"] = valid("qa")
    assert isinstance(repo.decide(policy), Serving)


def test_a_stage_the_policy_does_not_allow_is_never_served(repo: Repo) -> None:
    repo.tag("m#qa#1", 0, 10)
    decision = refused(repo.decide("stages: [dev, prod]", stage="qa"))
    assert decision.fallback is None
    assert str(decision.violations[0]) == (
        "tag m#qa#1: stage 'qa' is not allowed (allowed: dev, prod) "
        "(stages in .gitstage/policy.yaml)"
    )


def test_a_forged_assignment_does_not_undeprecate_the_artifact(repo: Repo) -> None:
    repo.tag("m#prod#1", 0, 10)
    repo.tag("m@deprecated", 0, 20)
    repo.tag("m#prod#2", 1, 30)  # newer than the deprecation: GTO would undeprecate
    repo.lookup.statuses["m#prod#1"] = valid("release")
    decision = refused(repo.decide(SIGNED_PROD))
    assert decision.fallback is None


def test_pinned_versions_are_not_stage_promotions(repo: Repo) -> None:
    decision = repo.decide(SIGNED_PROD, version="v2.0.0")
    assert isinstance(decision, Serving)
    assert decision.version == "v2.0.0"


def test_only_the_holders_signatures_are_verified_in_a_long_history(tmp_path: Path) -> None:
    scratch = ScratchRepo(tmp_path / "long")
    lookup = Lookup()
    for n in range(300):
        commit = scratch.commit({"a": str(n)}, When(0))
        scratch.tag(f"m@v0.0.{n + 1}", commit, When(2 * n + 1))
        scratch.tag(f"m#prod#{n + 1}", commit, When(2 * n + 2))
        lookup.statuses[f"m#prod#{n + 1}"] = valid("release")
    state = read_registry(scratch.path).state
    evaluator = PolicyEvaluator(state, parse_policy(SIGNED_PROD), lookup)
    binding = v1.DeploymentBinding.model_validate(
        {"name": "m", "artifact": "m", "template": TEMPLATE, "stage": "prod"}
    )
    decision = decide(state, binding, v1.Resolution(), evaluator)
    assert isinstance(decision, Serving)
    assert decision.version == "v0.0.300"
    assert lookup.asked == ["m#prod#300"]
    # `gitstage check` judges the whole history: every prod tag, once each.
    lookup.asked.clear()
    assert assignment_violations(state, parse_policy(SIGNED_PROD), lookup) == []
    assert sorted(lookup.asked) == sorted(f"m#prod#{n + 1}" for n in range(300))


def test_circular_requires_are_rejected() -> None:
    with pytest.raises(PolicyFileError) as error:
        parse_policy("rules: {a: {requires: [b]}, b: {requires: [c]}, c: {requires: [a]}}")
    assert str(error.value) == (
        "invalid .gitstage/policy.yaml: rules: circular requires: a -> b -> c -> a"
    )
    with pytest.raises(PolicyFileError, match="circular requires: prod -> prod"):
        parse_policy("rules: {prod: {requires: [prod]}}")

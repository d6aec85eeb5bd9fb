"""The promotion policy with real SSH signatures: `gitstage assign` refuses a violation,
`gitstage check` reports a forged tag pushed around it, and the operator's decision words the
violation exactly as check does."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitstage.adapters.git.policy_reader import policy_evaluator
from gitstage.adapters.git.reader import read_registry
from gitstage.domain.policy.rules import PolicyEvaluator
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.plan import Refused, decide
from gitstage.workloads.render import Serving
from tests.support.scratch import When
from tests.write.conftest import Registry

POLICY = """\
stages: [dev, staging, prod]
rules:
  prod:
    requires: [staging]
    signed_by: [release@example.com]
"""
RULE = "(rules.prod.signed_by in .gitstage/policy.yaml)"


@dataclass(frozen=True)
class Keys:
    release: Path
    mallory: Path


def ssh_key(path: Path, comment: str) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    return path


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(ssh_key(tmp_path / "release", "release"), ssh_key(tmp_path / "mallory", "mallory"))


@pytest.fixture
def policed(registry: Registry, keys: Keys) -> Registry:
    """A registry whose HEAD holds the policy; mallory's key is trusted, for another principal."""
    signers = "".join(
        f"{who}@example.com {key.with_suffix('.pub').read_text()}"
        for who, key in (("release", keys.release), ("mallory", keys.mallory))
    )
    registry.scratch.commit(
        {".gitstage/policy.yaml": POLICY, ".gitstage/allowed_signers": signers},
        When(next(registry.clock)),
    )
    return registry


def evaluator(registry: Registry) -> PolicyEvaluator:
    state = read_registry(registry.path).state
    found = policy_evaluator(registry.repo, state, None)
    assert found is not None
    return found


def decide_prod(registry: Registry) -> Serving | Refused:
    policy = evaluator(registry)
    binding = v1.DeploymentBinding.model_validate(
        {
            "name": "m",
            "artifact": "m",
            "stage": "prod",
            "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
        }
    )
    decision = decide(policy.state, binding, v1.Resolution(), policy)
    assert isinstance(decision, Serving | Refused), decision
    return decision


def check_lines(registry: Registry) -> tuple[int, list[str], str]:
    result = registry.gs("check")
    return result.code, result.out.splitlines(), result.err


def test_signed_promotion_then_a_forged_prod_tag(policed: Registry, keys: Keys) -> None:
    policed.ok("register", "m", "--version", "v1.0.0")
    policed.ok("assign", "m", "--version", "v1.0.0", "--stage", "staging")
    policed.ok(
        "assign", "m", "--version", "v1.0.0", "--stage", "prod", "--sign-key", str(keys.release)
    )
    assert "-----BEGIN SSH SIGNATURE-----" in policed.tag("m#prod#2").message
    code, lines, summary = check_lines(policed)
    assert (code, lines) == (0, [])
    assert "2 assignments checked against the policy" in summary
    first = decide_prod(policed)
    assert isinstance(first, Serving)
    assert (first.version, first.tag) == ("v1.0.0", "m#prod#2")

    c2 = policed.commit("weights-2")
    policed.ok("register", "m", "--version", "v2.0.0")
    policed.ok("assign", "m", "--version", "v2.0.0", "--stage", "staging")
    policed.scratch.tag("m#prod#4", c2, When(next(policed.clock)))  # plain git: no signature

    code, lines, _ = check_lines(policed)
    forged = (
        f"tag m#prod#4: not signed, but 'prod' requires a signature by release@example.com {RULE}"
    )
    assert (code, lines) == (1, [forged])
    decision = decide_prod(policed)
    assert isinstance(decision, Refused)
    assert [str(v) for v in decision.violations] == [forged]  # the operator's wording is check's
    assert decision.fallback is not None
    assert (decision.fallback.version, decision.fallback.tag) == ("v1.0.0", "m#prod#2")


def test_assign_refuses_what_the_policy_forbids(policed: Registry, keys: Keys) -> None:
    policed.ok("register", "m", "--version", "v1.0.0")
    assert policed.refused(
        "assign", "m", "--version", "v1.0.0", "--stage", "prod", "--sign-key", str(keys.release)
    ) == (
        "tag m#prod#1: version v1.0.0 of m was never in stage 'staging' before its assignment "
        "to 'prod' (rules.prod.requires in .gitstage/policy.yaml)"
    )
    policed.ok("assign", "m", "--version", "v1.0.0", "--stage", "staging")
    assert policed.refused("assign", "m", "--version", "v1.0.0", "--stage", "prod") == (
        f"tag m#prod#2: not signed, but 'prod' requires a signature by release@example.com {RULE}"
    )
    assert policed.refused(
        "assign", "m", "--version", "v1.0.0", "--stage", "prod", "--sign-key", str(keys.mallory)
    ) == (
        "tag m#prod#2: signed by mallory@example.com, but 'prod' requires a signature by "
        f"release@example.com {RULE}"
    )
    assert policed.refused("assign", "m", "--version", "v1.0.0", "--stage", "qa") == (
        "tag m#qa#2: stage 'qa' is not allowed (allowed: dev, staging, prod) "
        "(stages in .gitstage/policy.yaml)"
    )
    policed.ok(
        "assign", "m", "--version", "v1.0.0", "--stage", "prod", "--sign-key", str(keys.release)
    )


def test_a_tag_signed_by_an_untrusted_key_is_reported(policed: Registry, tmp_path: Path) -> None:
    stranger = ssh_key(tmp_path / "stranger", "stranger")
    policed.ok("register", "m", "--version", "v1.0.0")
    policed.ok("assign", "m", "--version", "v1.0.0", "--stage", "staging")
    policed.repo.config["gpg.format"] = "ssh"
    policed.repo.config["user.signingkey"] = str(stranger)
    subprocess.run(
        [
            "git",
            "-C",
            str(policed.path),
            "tag",
            "-s",
            "m#prod#2",
            "-m",
            "promote",
            "m@v1.0.0^{commit}",
        ],
        check=True,
        capture_output=True,
    )
    code, lines, _ = check_lines(policed)
    assert (code, lines) == (
        1,
        [f"tag m#prod#2: the signature does not verify (key not in allowed_signers) {RULE}"],
    )

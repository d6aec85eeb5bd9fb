"""Multi-tenancy in the operator's pure parts: the pod policy, the impersonated account, and the
conditions a refusal gives (the e2e proof is tests/e2e/test_tenancy.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gitstage.operator.settings import OperatorSettings, SettingsError, Tenancy
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.pod_policy import PodPolicy, fetcher_image_allowed, violations
from gitstage.workloads.status import Refusal, condition_updates
from tests.support.hostile_specs import POD_POLICY_BREAKERS, VALID
from tests.unit.test_conditions import Source

IMAGE = "gitstage:test"
LIFTED: dict[str, Any] = {
    "allow_privileged": True,
    "allow_host_namespaces": True,
    "allow_host_path": True,
    "fetcher_images": ("attacker.example/*",),
}


def binding_of(spec: dict[str, Any]) -> v1.DeploymentBinding:
    return v1.ModelRegistrySpec.model_validate(spec).deployments[0]


def test_a_plain_pod_breaks_nothing() -> None:
    assert violations(binding_of(VALID), PodPolicy(), IMAGE, impersonating=False) == []


@pytest.mark.fault
@pytest.mark.parametrize("case", sorted(POD_POLICY_BREAKERS))
def test_each_escalation_is_refused_by_default(case: str) -> None:
    spec, _setting = POD_POLICY_BREAKERS[case]
    found = violations(binding_of(spec), PodPolicy(), IMAGE, impersonating=False)
    assert len(found) == 1, found
    assert "\n" not in found[0]


@pytest.mark.parametrize(
    "case", sorted(c for c, (_, setting) in POD_POLICY_BREAKERS.items() if setting)
)
def test_its_setting_lifts_exactly_that_refusal(case: str) -> None:
    spec, setting = POD_POLICY_BREAKERS[case]
    assert setting is not None
    allowed = PodPolicy(**{setting: LIFTED[setting]})
    assert violations(binding_of(spec), allowed, IMAGE, impersonating=False) == []
    others = PodPolicy(**{k: v for k, v in LIFTED.items() if k != setting})
    assert violations(binding_of(spec), others, IMAGE, impersonating=False) != []


def test_a_pod_service_account_is_the_tenants_choice_when_impersonating() -> None:
    spec, _ = POD_POLICY_BREAKERS["another ServiceAccount, not impersonating"]
    assert violations(binding_of(spec), PodPolicy(), IMAGE, impersonating=True) == []


def test_the_operators_own_fetcher_image_is_always_allowed() -> None:
    assert fetcher_image_allowed(IMAGE, PodPolicy(), IMAGE)
    assert not fetcher_image_allowed("gitstage:other", PodPolicy(), IMAGE)
    assert fetcher_image_allowed(
        "reg.example/ml/f:1", PodPolicy(fetcher_images=("reg.example/ml/*",)), IMAGE
    )


def test_tenancy_settings_from_the_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "GITSTAGE_DEFAULT_SERVICE_ACCOUNT": "gitstage-tenant",
            "GITSTAGE_REQUIRE_SERVICE_ACCOUNT": "1",
            "GITSTAGE_ALLOW_HOST_PATH": "true",
            "GITSTAGE_ALLOWED_FETCHER_IMAGES": "a.example/*, b.example/f:1\nc.example/*",
        }
    )
    assert settings.tenancy == Tenancy("gitstage-tenant", require_service_account=True)
    assert settings.tenancy.account_for(None) == "gitstage-tenant"
    assert settings.tenancy.account_for("ml-deployer") == "ml-deployer"
    assert settings.pod_policy == PodPolicy(
        allow_host_path=True, fetcher_images=("a.example/*", "b.example/f:1", "c.example/*")
    )
    default = OperatorSettings.from_env({})
    assert default.tenancy.account_for(None) is None
    assert default.pod_policy == PodPolicy()


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"GITSTAGE_DEFAULT_SERVICE_ACCOUNT": "ns/admin"}, "is not a ServiceAccount name"),
        ({"GITSTAGE_REQUIRE_SERVICE_ACCOUNT": "maybe"}, "must be 1 or 0"),
    ],
)
def test_bad_tenancy_settings_are_one_line_errors(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        OperatorSettings.from_env(env)


@pytest.mark.parametrize("reason", ["PodPolicyViolation", "Forbidden"])
def test_a_tenancy_refusal_is_stalled_and_says_why(reason: str) -> None:
    spec = v1.ModelRegistrySpec.model_validate(VALID)
    refusal = Refusal(reason, "churn-prod: pod policy: the pod sets hostPID")
    serving = [v1.DeploymentState(name="churn-prod", artifact="churn", rollout="Complete")]
    source = Source()
    by_type = {c.type: c for c in condition_updates(spec, source, serving, [refusal])}
    assert (by_type["Ready"].status, by_type["Ready"].reason) == (False, reason)
    assert "hostPID" in by_type["Ready"].message
    assert by_type["Stalled"].status is True
    assert by_type["Reconciling"].status is False

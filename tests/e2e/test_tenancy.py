"""Multi-tenancy on the real control plane, with real pods.

The operator runs in-process as the chart's ServiceAccount, with the RBAC the chart renders for
`tenancy.requireServiceAccount=true` (applied as rendered), so it may neither write Deployments
nor read Secrets itself. It acts for each ModelRegistry only as the ServiceAccount the registry
names: a tenant's account with the rights rolls out real pods; one without gets nothing, and
says why; a registry naming none is refused; pods that would escape Pod Security are refused.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gitstage.dev.binaries import binaries_dir
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.conftest import Kube
from tests.e2e.kubeutil import api, eventually, namespace_with_git_secret
from tests.e2e.test_helm import (
    Running,
    create_namespace,
    kubeconfig_client,
    operator_running,
    permissions,
    service_account_kubeconfig,
)
from tests.e2e.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    Env,
    Registry,
    condition,
    deployment,
    events,
    model_registry,
    running_pods,
    served_commit,
)
from tests.support.chart import ROOT, render
from tests.support.git import init_served_bare
from tests.support.hostile_specs import POD_POLICY_BREAKERS

pytestmark = pytest.mark.e2e

PASSWORD = "tenant-" + uuid.uuid4().hex[:8]
ALLOWED_FETCHERS = "registry.example/ml/*"


@dataclass
class Tenancy:
    """A tenant namespace served by an operator holding the chart's tenancy RBAC."""

    env: Env
    operator_namespace: str
    operator_account: str
    token: client.ApiClient
    running: Running
    created: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.env.namespace


def chart_rbac(
    home: Path, release: str, namespace: str, watched: str, image: str
) -> dict[str, Any]:
    """`helm template` of the chart in tenancy mode: its ServiceAccount, Role and RoleBinding
    applied as rendered (no operator pod: the operator under test runs in-process), and the
    operator container it would run."""
    home.mkdir(parents=True, exist_ok=True)
    values = {
        "watchNamespaces": [watched],
        "crds": {"enabled": False, "keep": True},
        "tenancy": {"requireServiceAccount": True, "defaultServiceAccount": ""},
        "fetcher": {"image": image, "allowedImages": [ALLOWED_FETCHERS]},
    }
    rendered = render(home, values, release=release, namespace=namespace)
    kinds = ("ServiceAccount", "Role", "RoleBinding")
    rbac = [d for kind in kinds for d in rendered.of_kind(kind)]
    kubectl_apply(rbac)
    (operator,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def kubectl_apply(documents: list[dict[str, Any]]) -> None:
    kubectl = [str(binaries_dir() / "kubectl"), "apply", "-f", "-"]
    text = yaml.safe_dump_all(documents)
    subprocess.run(kubectl, input=text, text=True, check=True, capture_output=True)


def apply_example_account(namespace: str) -> None:
    """examples/tenant-rbac.yaml in the tenant's namespace, for its Secret `git-auth`."""
    documents = list(yaml.safe_load_all((ROOT / "examples" / "tenant-rbac.yaml").read_text()))
    for document in documents:
        document["metadata"]["namespace"] = namespace
        for subject in document.get("subjects", []):
            subject["namespace"] = namespace
        for rule in document.get("rules", []):
            if rule.get("resourceNames") == ["registry-auth"]:
                rule["resourceNames"] = ["git-auth"]
    kubectl_apply(documents)


def tenant_account(namespace: str, name: str, rules: list[client.V1PolicyRule]) -> str:
    """A ServiceAccount of the tenant's namespace with a Role of exactly these rules."""
    core = client.CoreV1Api(api())
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    if rules:
        grant(namespace, name, rules)
    return name


def grant(namespace: str, account: str, rules: list[client.V1PolicyRule]) -> None:
    rbac = client.RbacAuthorizationV1Api(api())
    role = f"{account}-{uuid.uuid4().hex[:4]}"
    rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name=role), rules=rules)
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=role),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=namespace)
            ],
        ),
    )


READ_GIT_SECRET = client.V1PolicyRule(
    api_groups=[""], resources=["secrets"], resource_names=["git-auth"], verbs=["get"]
)
APPLY_DEPLOYMENTS = client.V1PolicyRule(
    api_groups=["apps"], resources=["deployments"], verbs=["get", "create", "patch"]
)


@pytest.fixture(scope="module")
def tenancy(
    crd: Kube, mirror_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenancy]:
    root = tmp_path_factory.mktemp("tenancy")
    bare = root / "registry.git"
    init_served_bare(bare)
    namespace = namespace_with_git_secret("tenant", "alice", PASSWORD)
    operator_namespace = create_namespace(f"gitstage-tn-{uuid.uuid4().hex[:6]}")
    container = chart_rbac(root / "helm", "gst", operator_namespace, namespace, crd.image)
    account = "gst-gitstage"
    kubeconfig = service_account_kubeconfig(crd, operator_namespace, account, root / "sa.yaml")
    apply_example_account(namespace)  # "deployer", as the README tells tenants to grant it
    tenant_account(namespace, "no-deployments", [READ_GIT_SECRET])
    tenant_account(namespace, "no-secrets", [APPLY_DEPLOYMENTS])
    env_values = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    auth = BasicAuth("alice", PASSWORD)
    with GitHttpServer(root, auth=auth, host=crd.node_address) as server:
        url = server.url("registry.git")
        clone = root / "clone"
        authed = url.replace("http://", f"http://alice:{PASSWORD}@")
        subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
        registry = Registry(clone, url)
        registry.git("checkout", "-q", "-b", "main")
        (clone / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.txt\n")
        with operator_running(container["args"], env_values, kubeconfig, mirror_cache) as running:
            env = Env(registry, server, url, namespace, running.runner)
            token = kubeconfig_client(kubeconfig)
            yield Tenancy(env, operator_namespace, account, token, running)
        assert PASSWORD not in running.runner.output
    core = client.CoreV1Api(api())
    core.delete_namespace(namespace)
    core.delete_namespace(operator_namespace)


def create(tenancy: Tenancy, name: str, account: str | None, **spec: Any) -> None:
    body = model_registry(tenancy.env, name)
    if account is not None:
        body["spec"]["serviceAccountName"] = account
    body["spec"].update(spec)
    client.CustomObjectsApi(api()).create_namespaced_custom_object(
        GROUP, VERSION, tenancy.namespace, PLURAL, body
    )


def ready(tenancy: Tenancy, name: str) -> dict[str, Any] | None:
    found = condition(tenancy.env, name, "Ready")
    return (
        found
        if found and found.get("status") == "False" and found["reason"] != "Progressing"
        else None
    )


def release_a_version(tenancy: Tenancy, model: str) -> str:
    registry = tenancy.env.registry
    commit = registry.commit(model)
    registry.tag(f"churn@v1.{len(tenancy.created)}.0", commit)
    registry.tag(f"churn#prod#{len(tenancy.created) + 1}", commit)
    tenancy.created.append(commit)
    return commit


def test_the_operators_own_token_writes_no_deployment_and_reads_no_secret(
    tenancy: Tenancy,
) -> None:
    ns = tenancy.namespace
    granted = {
        ("impersonate", "", "serviceaccounts", ns): True,
        ("get", "apps", "deployments", ns): True,
        ("watch", "apps", "deployments", ns): True,
        ("create", "apps", "deployments", ns): False,
        ("patch", "apps", "deployments", ns): False,
        ("delete", "apps", "deployments", ns): False,
        ("get", "", "services", ns): True,
        ("create", "", "services", ns): False,
        ("get", "", "secrets", ns): False,
        ("list", "", "pods", ns): True,
        ("get", "", "pods/log", ns): False,
        ("create", "", "pods/exec", ns): False,
        ("impersonate", "", "serviceaccounts", "kube-system"): False,
        ("impersonate", "", "users", None): False,
        ("impersonate", "", "groups", None): False,
    }
    assert permissions(tenancy.token, list(granted)) == granted


def test_a_tenant_rolls_out_real_pods_as_its_service_account(tenancy: Tenancy) -> None:
    commit = release_a_version(tenancy, "tenant weights v1")
    create(tenancy, "served", "deployer")
    env = tenancy.env
    eventually(lambda: served_commit(env, "served-prod") == commit, timeout=90, what="rollout")
    eventually(lambda: running_pods(env, commit) == 2, timeout=120, what="2 pods Running")
    eventually(
        lambda: (condition(env, "served", "Ready") or {}).get("status") == "True",
        timeout=60,
        what="Ready=True",
    )
    applied = deployment(env, "served-prod")
    assert applied is not None
    assert applied.metadata is not None
    managers = {m.manager for m in applied.metadata.managed_fields or []}
    assert "gitstage" in managers


@pytest.mark.fault
def test_a_registry_naming_no_service_account_is_refused(tenancy: Tenancy) -> None:
    create(tenancy, "anonymous", None)
    refused = eventually(lambda: ready(tenancy, "anonymous"), timeout=60, what="a refusal")
    assert refused["reason"] == "ServiceAccountRequired"
    assert (condition(tenancy.env, "anonymous", "Stalled") or {}).get("status") == "True"
    assert deployment(tenancy.env, "anonymous-prod") is None
    assert any(
        "spec.serviceAccountName is required" in m
        for m in events(tenancy.env, "ServiceAccountRequired")
    )


@pytest.mark.fault
def test_a_tenant_without_deployment_rights_gets_nothing_until_granted(tenancy: Tenancy) -> None:
    create(tenancy, "unprivileged", "no-deployments")
    refused = eventually(lambda: ready(tenancy, "unprivileged"), timeout=60, what="a refusal")
    assert refused["reason"] == "Forbidden"
    assert "system:serviceaccount:" + tenancy.namespace + ":no-deployments" in refused["message"]
    assert 'cannot patch resource "deployments"' in refused["message"]
    assert deployment(tenancy.env, "unprivileged-prod") is None
    assert events(tenancy.env, "Forbidden")
    # Rights granted later are noticed without any change to the registry (a timed retry).
    grant(tenancy.namespace, "no-deployments", [APPLY_DEPLOYMENTS])
    eventually(lambda: deployment(tenancy.env, "unprivileged-prod"), timeout=90, what="the retry")


@pytest.mark.fault
def test_a_secret_the_tenant_may_not_read_is_never_used(tenancy: Tenancy) -> None:
    create(tenancy, "borrower", "no-secrets")
    refused = eventually(lambda: ready(tenancy, "borrower"), timeout=60, what="a refusal")
    assert refused["reason"] == "SecretForbidden"
    assert f"may not get secret {tenancy.namespace}/git-auth" in refused["message"]
    assert deployment(tenancy.env, "borrower-prod") is None


@pytest.mark.fault
def test_pods_that_escape_pod_security_are_refused(tenancy: Tenancy) -> None:
    # With impersonation a pod's own ServiceAccount is the tenant's choice: not a breaker here.
    cases = sorted(c for c in POD_POLICY_BREAKERS if "ServiceAccount" not in c)
    for number, case in enumerate(cases):
        spec, _setting = POD_POLICY_BREAKERS[case]
        binding = dict(spec["deployments"][0], name=f"escape-{number}-prod")
        create(tenancy, f"escape-{number}", "deployer", deployments=[binding])
    for number, case in enumerate(cases):
        name = f"escape-{number}"
        refused = eventually(lambda n=name: ready(tenancy, n), timeout=60, what=case)
        assert refused["reason"] == "PodPolicyViolation", (case, refused)
        assert (condition(tenancy.env, name, "Stalled") or {}).get("status") == "True"
        assert deployment(tenancy.env, f"{name}-prod") is None, case
    assert len(events(tenancy.env, "PodPolicyViolation")) >= len(cases)

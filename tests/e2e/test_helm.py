"""The chart on the real API server: `helm install`, then the operator runs in-process with the
arguments of the installed Deployment, authenticated as the chart's ServiceAccount (a
TokenRequest token, not the admin), and completes its happy path; what the token may not do is
denied. Both RBAC modes: a list of watched namespaces (Roles), and cluster-wide (a ClusterRole).

This module has a cluster of its own with a KWOK node: the chart's pod must not run a second
operator beside the in-process one under test. The chart's pod running for real, from the
built image under the restricted standard, is tests/e2e/test_real_pods.py's.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube import client as kube_client
from gitstage.cli.operator import kopf_arguments, operator_command, settings_env
from gitstage.dev.binaries import binaries_dir
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.conftest import Kube, cluster_for, kwok_cluster
from tests.e2e.kubeutil import api, eventually
from tests.e2e.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    Env,
    Registry,
    condition,
    deployment,
    events,
    get_registry,
    model_registry,
    running_pods,
    served_commit,
)
from tests.support.chart import CHART, ROOT, helm, values_file
from tests.support.git import init_served_bare
from tests.support.ports import reserve_port

pytestmark = pytest.mark.e2e

CRD_NAME = f"{PLURAL}.{GROUP}"
PASSWORD = "helm-" + uuid.uuid4().hex[:8]
EXAMPLE = ROOT / "examples" / "modelregistry.yaml"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
COUNTER = itertools.count(1)  # versions and stage-tag numbers, increasing across tests


@pytest.fixture(scope="module")
def kube(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kube]:
    """A KWOK cluster for this module (see the module's docstring), unless one was given."""
    yield from cluster_for(request, tmp_path_factory, kwok_cluster)


@dataclass(frozen=True)
class Release:
    """An installed release and a kubeconfig holding a token of its ServiceAccount."""

    name: str
    namespace: str
    service_account: str
    kubeconfig: Path
    install_seconds: float

    def operator_container(self) -> client.V1Container:
        found = client.AppsV1Api(api()).read_namespaced_deployment(
            f"{self.name}-gitstage", self.namespace
        )
        assert found.spec is not None
        assert found.spec.template.spec is not None
        (container,) = found.spec.template.spec.containers
        return container

    def client(self) -> client.ApiClient:
        return kubeconfig_client(self.kubeconfig)


def kubeconfig_client(path: Path) -> client.ApiClient:
    """A client of its own for the identity in `path` (the tests' admin client is untouched)."""
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(path), client_configuration=configuration
    )
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class GitSource:
    registry: Registry
    server: GitHttpServer
    url: str


@pytest.fixture(scope="module")
def git(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitSource]:
    """A registry served over authenticated smart HTTP on loopback: churn@v0.0.1 in prod."""
    root = tmp_path_factory.mktemp("helm-git")
    bare = root / "registry.git"
    init_served_bare(bare)
    with GitHttpServer(root, auth=BasicAuth("alice", PASSWORD), host=kube.node_address) as server:
        url = server.url("registry.git")
        clone = root / "clone"
        authed = url.replace("http://", f"http://alice:{PASSWORD}@")
        subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
        registry = Registry(clone, url)
        registry.git("checkout", "-q", "-b", "main")
        (clone / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.txt\n")
        yield GitSource(registry, server, url)


def create_namespace(name: str, labels: dict[str, str] | None = None) -> str:
    core = client.CoreV1Api(api())
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    return name


def adopt_crd(release: str, namespace: str) -> None:
    """Let this release own the CRD if an earlier test created it (Helm adopts what is labelled)."""
    meta = {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        },
    }
    try:
        client.ApiextensionsV1Api(api()).patch_custom_resource_definition(
            CRD_NAME, {"metadata": meta}
        )
    except ApiException as error:
        if error.status != 404:
            raise


def service_account_kubeconfig(kube: Kube, namespace: str, name: str, path: Path) -> Path:
    """The admin's cluster entry with a fresh TokenRequest token of the ServiceAccount."""
    status = (
        client.CoreV1Api(api())
        .create_namespaced_service_account_token(
            name,
            namespace,
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
            ),
        )
        .status
    )
    assert status is not None
    token = status.token
    admin = yaml.safe_load(kube.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    user = f"system:serviceaccount:{namespace}:{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def install(kube: Kube, home: Path, name: str, namespace: str, values: dict[str, Any]) -> Release:
    home.mkdir(parents=True, exist_ok=True)
    # The API server's Pod Security admission refuses pods below the restricted standard here.
    create_namespace(namespace, RESTRICTED)
    if values.get("crds", {}).get("enabled", True):
        adopt_crd(name, namespace)
    started = time.monotonic()
    result = helm(
        home,
        "install",
        name,
        str(CHART),
        "--namespace",
        namespace,
        "--kubeconfig",
        str(kube.kubeconfig),
        "--values",
        str(values_file(home, values)),
        "--wait",
        "--timeout",
        "180s",
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seconds = time.monotonic() - started
    account = f"{name}-gitstage"
    kubeconfig = service_account_kubeconfig(kube, namespace, account, home / "sa.kubeconfig")
    return Release(name, namespace, account, kubeconfig, seconds)


@dataclass(frozen=True)
class Namespaces:
    watched: str
    other: str


def secrets_and_deployments(namespace: str) -> None:
    """What a ModelRegistry names (a Secret), and a Deployment the operator does not own."""
    core = client.CoreV1Api(api())
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="git-auth"),
            string_data={"username": "alice", "password": PASSWORD},
        ),
    )
    labels = {"app": "bystander"}
    client.AppsV1Api(api()).create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="bystander"),
            spec=client.V1DeploymentSpec(
                replicas=0,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="srv:1")]),
                ),
            ),
        ),
    )


@pytest.fixture(scope="module")
def namespaces(kube: Kube) -> Iterator[Namespaces]:
    suffix = uuid.uuid4().hex[:6]
    found = Namespaces(create_namespace(f"ml-{suffix}"), create_namespace(f"other-{suffix}"))
    for namespace in (found.watched, found.other):
        secrets_and_deployments(namespace)
    yield found
    core = client.CoreV1Api(api())
    for namespace in (found.watched, found.other):
        core.delete_namespace(namespace)


@pytest.fixture(scope="module")
def namespaced(
    kube: Kube, namespaces: Namespaces, tmp_path_factory: pytest.TempPathFactory
) -> Release:
    home = tmp_path_factory.mktemp("helm-namespaced")
    values = {"watchNamespaces": [namespaces.watched]}
    return install(kube, home, "gsns", f"gitstage-ns-{uuid.uuid4().hex[:6]}", values)


@pytest.fixture(scope="module")
def cluster_wide(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Release:
    home = tmp_path_factory.mktemp("helm-cluster")
    values = {"crds": {"enabled": False, "keep": True}}
    return install(kube, home, "gscw", f"gitstage-cw-{uuid.uuid4().hex[:6]}", values)


@contextmanager
def operator_credentials(kubeconfig: Path) -> Iterator[None]:
    """The operator's cached API client (kopf logs in with it too) built from `kubeconfig`;
    the tests' own clients keep reading the admin's $KUBECONFIG."""
    admin = os.environ["KUBECONFIG"]
    kube_client.api_client.cache_clear()
    os.environ["KUBECONFIG"] = str(kubeconfig)
    try:
        kube_client.api_client()
    finally:
        os.environ["KUBECONFIG"] = admin
    try:
        yield
    finally:
        kube_client.api_client.cache_clear()


@dataclass(frozen=True)
class Running:
    runner: KopfRunner
    liveness_url: str


@contextmanager
def operator_as(release: Release, cache: Path) -> Iterator[Running]:
    """`gitstage <args of the installed Deployment>` in-process, as the ServiceAccount."""
    container = release.operator_container()
    assert container.args is not None
    env = {e.name: e.value for e in container.env or [] if e.value is not None}
    with operator_running(list(container.args), env, release.kubeconfig, cache) as running:
        yield running


@contextmanager
def operator_running(
    args: list[str], env: dict[str, str], kubeconfig: Path, cache: Path
) -> Iterator[Running]:
    """`gitstage <args>` (a chart Deployment's) in-process with the identity in `kubeconfig`.

    The args go through the real click command and its settings; only the liveness address
    changes, from the pod's 0.0.0.0 to a free loopback port (same path).
    """
    assert args[0] == "operator"
    params = operator_command.make_context("operator", args[1:]).params
    path = urllib.parse.urlsplit(str(params["liveness"])).path
    liveness = f"http://127.0.0.1:{reserve_port()}{path}"
    kopf_args = kopf_arguments(
        params["namespaces"], liveness, params["peering"], params["verbose"], params["log_format"]
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings_env(params).items():
            if not name.startswith(("GITSTAGE_METRICS", "GITSTAGE_WEBHOOK")):
                patch.setenv(name, value)  # the listeners stay off: ports of a pod
        patch.setenv("GITSTAGE_FETCHER_IMAGE", env["GITSTAGE_FETCHER_IMAGE"])
        patch.setenv("GITSTAGE_CACHE_DIR", str(cache))
        with operator_credentials(kubeconfig), KopfRunner(kopf_args, timeout=60) as runner:
            yield Running(runner, liveness)


def who_runs_the_operator() -> str:
    review = client.AuthenticationV1Api(kube_client.api_client()).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    assert review.status is not None
    assert review.status.user_info is not None
    return str(review.status.user_info.username)


def liveness_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL
            return bool(response.status == 200)
    except OSError:
        return False


def registry_exists(namespace: str, name: str) -> bool:
    try:
        client.CustomObjectsApi(api()).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def roll_out(git: GitSource, namespace: str, runner: KopfRunner, name: str) -> None:
    """The happy path: a stage assignment rolls out with pods Running, a newer one rolls
    forward, a deleted ModelRegistry is released to the garbage collector."""
    env = Env(git.registry, git.server, git.url, namespace, runner)
    first = git.registry.commit(f"{name}-weights-1")
    git.registry.tag(f"churn@v1.0.{next(COUNTER)}", first)
    git.registry.tag(f"churn#prod#{next(COUNTER)}", first)
    custom = client.CustomObjectsApi(api())
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, model_registry(env, name)
    )
    deployment_name = f"{name}-prod"
    eventually(lambda: served_commit(env, deployment_name) == first, timeout=90, what="rollout")
    eventually(lambda: running_pods(env, first) == 2, timeout=90, what="2 pods Running")
    eventually(
        lambda: (condition(env, name, "Ready") or {}).get("status") == "True",
        timeout=60,
        what="Ready=True",
    )
    eventually(lambda: events(env, "Created"), what="a Created event posted by the operator")
    second = git.registry.commit(f"{name}-weights-2")
    git.registry.tag(f"churn@v1.0.{next(COUNTER)}", second)
    git.registry.tag(f"churn#prod#{next(COUNTER)}", second)
    eventually(lambda: served_commit(env, deployment_name) == second, timeout=60, what="forward")
    eventually(lambda: running_pods(env, second) == 2, timeout=90, what="new pods Running")
    eventually(lambda: events(env, "RollingOut"), what="a RollingOut event posted by the operator")
    metadata = get_registry(env, name)["metadata"]
    uid = metadata["uid"]
    assert not metadata.get("finalizers"), metadata  # deletion never waits for the operator
    served = deployment(env, deployment_name)
    assert served is not None
    assert served.metadata is not None
    assert [o.uid for o in served.metadata.owner_references or []] == [uid]
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    # The operator lets go (it sets no finalizer, and kopf removes one an older release set); the
    # garbage collector then deletes the owned Deployment (tests/e2e/test_operator.py waits for
    # that: on a freshly installed CRD it takes up to the collector's 30 s discovery sync).
    eventually(lambda: not registry_exists(namespace, name), timeout=60, what="finalizer removed")


PERMISSION_TROUBLE = ("Forbidden", "Not enough permissions", "Failed to post an event", " 403")


def assert_clean_json_logs(output: str) -> list[dict[str, Any]]:
    """--log-format=json from the chart: every line is one JSON object; no permission trouble."""
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert records
    assert all("message" in r for r in records)
    troubled = [r["message"] for r in records if any(t in r["message"] for t in PERMISSION_TROUBLE)]
    assert troubled == []
    return records


def test_the_example_applies_with_a_server_side_dry_run(
    namespaced: Release, namespaces: Namespaces, kube: Kube, tmp_path: Path
) -> None:
    kubectl = str(binaries_dir() / "kubectl")
    base = [kubectl, "--kubeconfig", str(kube.kubeconfig), "-n", namespaces.watched]
    applied = subprocess.run(
        [*base, "apply", "--dry-run=server", "-f", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert "modelregistry.gitstage.dev/churn created (server dry run)" in applied.stdout
    broken = yaml.safe_load(EXAMPLE.read_text())
    broken["spec"]["deployments"][0]["version"] = "v1.0.0"  # and a stage: the CEL rule refuses
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    refused = subprocess.run(
        [*base, "apply", "--dry-run=server", "-f", str(tmp_path / "broken.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "set exactly one of stage or version" in refused.stderr


def test_the_operator_pod_meets_the_restricted_pod_security_standard(namespaced: Release) -> None:
    core = client.CoreV1Api(api())
    selector = f"app.kubernetes.io/instance={namespaced.name}"
    (pod,) = core.list_namespaced_pod(namespaced.namespace, label_selector=selector).items
    assert pod.status is not None
    assert pod.status.phase == "Running"
    # Enforcement is on: a pod without the hardening is refused in the same namespace.
    plain = client.V1Pod(
        metadata=client.V1ObjectMeta(name="plain"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="srv:1")]),
    )
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespaced.namespace, plain, dry_run="All")
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)


def test_namespaced_operator_completes_its_happy_path_as_its_service_account(
    namespaced: Release, namespaces: Namespaces, git: GitSource, tmp_path: Path
) -> None:
    with operator_as(namespaced, tmp_path / "mirrors") as running:
        assert who_runs_the_operator() == (
            f"system:serviceaccount:{namespaced.namespace}:{namespaced.service_account}"
        )
        eventually(lambda: liveness_ok(running.liveness_url), what="kopf's liveness endpoint")
        roll_out(git, namespaces.watched, running.runner, "churn")
    assert_clean_json_logs(running.runner.output)
    assert PASSWORD not in running.runner.output


Check = tuple[str, str, str, str | None]  # verb, group, resource, namespace (None: all)


def can(api_client: client.ApiClient, check: Check) -> bool:
    verb, group, resource, namespace = check
    attributes = client.V1ResourceAttributes(
        verb=verb, group=group, resource=resource, namespace=namespace
    )
    review = client.AuthorizationV1Api(api_client).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        )
    )
    assert review.status is not None
    return bool(review.status.allowed)


def permissions(api_client: client.ApiClient, checks: list[Check]) -> dict[Check, bool]:
    return {check: can(api_client, check) for check in checks}


def test_namespaced_token_is_confined_to_the_watched_namespace(
    namespaced: Release, namespaces: Namespaces
) -> None:
    token = namespaced.client()
    ml, other = namespaces.watched, namespaces.other
    with pytest.raises(ApiException) as secret:
        client.CoreV1Api(token).read_namespaced_secret("git-auth", other)
    assert secret.value.status == 403
    with pytest.raises(ApiException) as bystander:
        client.AppsV1Api(token).read_namespaced_deployment("bystander", other)
    assert bystander.value.status == 403
    # The Secret a ModelRegistry names in the watched namespace is readable: get, nothing more.
    assert client.CoreV1Api(token).read_namespaced_secret("git-auth", ml).data
    granted = {
        ("get", "", "secrets", ml): True,
        ("list", "", "secrets", ml): False,
        ("watch", "", "secrets", ml): False,
        ("get", "", "secrets", other): False,
        ("list", "", "secrets", None): False,
        ("patch", "apps", "deployments", ml): True,
        ("create", "apps", "deployments", ml): True,
        ("impersonate", "", "serviceaccounts", ml): True,  # opt-in: spec.serviceAccountName
        ("impersonate", "", "serviceaccounts", other): False,
        ("watch", "apps", "deployments", ml): True,
        ("create", "", "services", ml): True,  # a binding's `service:`
        ("delete", "", "services", ml): True,
        ("delete", "", "services", other): False,
        ("delete", "apps", "deployments", ml): False,
        ("get", "apps", "deployments", other): False,
        ("list", "apps", "deployments", None): False,
        ("list", "", "pods", ml): True,  # a failing fetcher is read from the pods' status
        ("get", "", "pods", other): False,
        ("delete", "", "pods", ml): False,
        ("get", "", "pods/log", ml): False,
        ("create", "", "pods/exec", ml): False,
        ("watch", GROUP, PLURAL, ml): True,
        ("patch", GROUP, PLURAL, ml): False,  # a registry's spec is never the operator's to edit
        ("create", GROUP, PLURAL, ml): False,
        ("delete", GROUP, PLURAL, ml): False,
        ("list", GROUP, PLURAL, other): False,
        ("create", "", "events", ml): True,
        ("create", "", "events", other): False,
        ("list", "apiextensions.k8s.io", "customresourcedefinitions", None): False,
        ("list", "", "namespaces", None): False,
    }
    assert permissions(token, list(granted)) == granted


def test_cluster_wide_token_reads_no_secret_it_is_not_given(
    cluster_wide: Release, namespaces: Namespaces
) -> None:
    token = cluster_wide.client()
    other = namespaces.other
    with pytest.raises(ApiException) as listing:
        client.CoreV1Api(token).list_secret_for_all_namespaces()
    assert listing.value.status == 403
    granted = {
        ("list", "", "pods", None): True,  # watched for failing fetchers, in every namespace
        ("delete", "", "pods", other): False,
        ("get", "", "pods/log", other): False,
        ("create", "", "pods/exec", other): False,
        ("get", "", "secrets", other): True,  # any namespace may hold a ModelRegistry
        ("list", "", "secrets", other): False,
        ("list", "", "secrets", None): False,
        ("watch", "", "secrets", None): False,
        ("list", "apps", "deployments", None): True,
        ("watch", "apps", "deployments", None): True,
        ("delete", "apps", "deployments", other): False,
        ("update", "apps", "deployments", other): False,
        ("list", "", "configmaps", None): False,
        ("watch", GROUP, PLURAL, None): True,
        ("patch", GROUP, PLURAL, other): False,
        ("create", GROUP, PLURAL, other): False,
        ("list", "apiextensions.k8s.io", "customresourcedefinitions", None): True,
        ("update", "apiextensions.k8s.io", "customresourcedefinitions", None): False,
        ("create", "rbac.authorization.k8s.io", "roles", other): False,
        ("list", "", "namespaces", None): False,
    }
    assert permissions(token, list(granted)) == granted


def test_cluster_wide_operator_completes_its_happy_path_as_its_service_account(
    cluster_wide: Release, kube: Kube, git: GitSource, tmp_path: Path
) -> None:
    namespace = create_namespace(f"team-{uuid.uuid4().hex[:6]}")
    secrets_and_deployments(namespace)
    try:
        with operator_as(cluster_wide, tmp_path / "mirrors") as running:
            assert who_runs_the_operator().endswith(f":{cluster_wide.service_account}")
            roll_out(git, namespace, running.runner, "fraud")
        assert_clean_json_logs(running.runner.output)
    finally:
        client.CoreV1Api(api()).delete_namespace(namespace)


def test_uninstall_keeps_the_crd_and_removes_the_grants(
    namespaced: Release, cluster_wide: Release, namespaces: Namespaces, tmp_path: Path
) -> None:
    for release in (namespaced, cluster_wide):
        result = helm(
            tmp_path,
            "uninstall",
            release.name,
            "--namespace",
            release.namespace,
            "--kubeconfig",
            os.environ["KUBECONFIG"],
            "--wait",
            check=False,
        )
        assert result.returncode == 0, result.stderr
        client.CoreV1Api(api()).delete_namespace(release.namespace)
    kept = client.ApiextensionsV1Api(api()).read_custom_resource_definition(CRD_NAME)
    assert kept.metadata is not None
    assert (kept.metadata.annotations or {}).get("helm.sh/resource-policy") == "keep"
    rbac = client.RbacAuthorizationV1Api(api())
    assert rbac.list_namespaced_role(namespaces.watched).items == []
    assert rbac.list_cluster_role(label_selector="app.kubernetes.io/instance=gscw").items == []
    # The ServiceAccount is gone, and its tokens with it (once the token cache expires).
    token = client.CoreV1Api(namespaced.client())
    eventually(
        lambda: (
            status_of(lambda: token.read_namespaced_secret("git-auth", namespaces.watched)) == 401
        ),
        timeout=30,
        what="the token to be rejected",
    )


def status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as error:
        return int(error.status)
    return 200

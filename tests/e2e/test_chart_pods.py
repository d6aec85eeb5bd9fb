"""The chart's operator on the real node: `helm upgrade` from the previous commit's chart, and
two replicas electing a leader on a Lease.

Upgrade: the served workloads keep their pods (no restart, same Deployment generation), and the
upgraded operator then rolls out the next stage assignment. The baseline is `HEAD~1` (or the
revision GITSTAGE_UPGRADE_FROM names): its chart, extracted with `git archive`, installed with
the image built from this checkout (the chart is what is upgraded here; the operator's own
render stability is test_restart's and test_render's).

High availability: the leader pod is killed mid-rollout; the standby takes the Lease and
finishes the rollout, with no duplicate rollout and no lost stage change.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitstage.dev.binaries import binaries_dir
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.conftest import Kube
from tests.e2e.kubeutil import api, eventually, install_crd, namespace_with_git_secret
from tests.e2e.test_real_pods import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    RealCluster,
    Scene,
    model_registry,
    registry_status,
    served_bytes,
)
from tests.support.git import init_served_bare

pytestmark = pytest.mark.e2e

PASSWORD = "upgrade-" + uuid.uuid4().hex[:6]
RELEASE = "gitstage-upgrade"


def baseline_chart(target: Path) -> tuple[str, Path]:
    """The chart of the baseline revision, extracted into `target`."""
    revision = os.environ.get("GITSTAGE_UPGRADE_FROM", "HEAD~1")
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.skip(f"no {revision} in this clone (shallow?): set GITSTAGE_UPGRADE_FROM")
    commit = found.stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "charts/gitstage"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return commit, target / "charts" / "gitstage"


def helm(namespace: str, *args: str) -> None:
    command = [str(binaries_dir() / "helm"), "-n", namespace, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr


def chart_values(image: str, watched: str) -> list[str]:
    repository, tag = image.rsplit(":", 1)
    values = {
        "crds.enabled": "false",
        "image.repository": repository,
        "image.tag": tag,
        "image.pullPolicy": "IfNotPresent",
        "watchNamespaces[0]": watched,
    }
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def scene(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    if kube.mode != "local":
        pytest.skip("real pods need the local cluster (its node address and imported image)")
    root = tmp_path_factory.mktemp("upgrade")
    init_served_bare(root / "registry.git")
    namespace = namespace_with_git_secret("upgrade", "alice", PASSWORD)
    with GitHttpServer(root, auth=BasicAuth("alice", PASSWORD), host=kube.node_address) as server:
        url = server.url("registry.git")
        clone = root / "clone"
        authed = url.replace("http://", f"http://alice:{PASSWORD}@")
        subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
        scene = Scene(RealCluster(kube.node_address, kube.image), root, clone, url, namespace)
        scene.git("checkout", "-q", "-b", "main")
        (clone / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.bin\n")
        yield scene
    client.CoreV1Api(api()).delete_namespace(namespace)


def serving(scene: Scene, expected: str) -> None:
    eventually(
        lambda: served_bytes(scene, "churn") == expected.encode(),
        timeout=300,
        what=f"churn serving {expected!r}",
    )


def pods_of(scene: Scene) -> set[str]:
    pods = client.CoreV1Api(api()).list_namespaced_pod(
        scene.namespace, label_selector="gitstage.dev/deployment=churn"
    )
    return {p.metadata.uid for p in pods.items if p.metadata.deletion_timestamp is None}


def operator_pod(namespace: str) -> str | None:
    pods = client.CoreV1Api(api()).list_namespaced_pod(namespace).items
    ready = [
        p.metadata.uid
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    return ready[0] if len(ready) == 1 else None


def test_helm_upgrade_from_the_previous_chart_restarts_no_served_pod(
    scene: Scene, tmp_path: Path
) -> None:
    commit, old_chart = baseline_chart(tmp_path)
    install_crd()
    operator_namespace = f"{RELEASE}-{uuid.uuid4().hex[:6]}"
    values = chart_values(scene.cluster.image, scene.namespace)
    helm(
        operator_namespace,
        "install",
        RELEASE,
        str(old_chart),
        "--create-namespace",
        *values,
        "--wait",
    )
    try:
        v1 = scene.commit("bytes served across the upgrade")
        scene.tag("churn@v1.0.0", v1)
        scene.tag("churn#prod#1", v1)
        client.CustomObjectsApi(api()).create_namespaced_custom_object(
            GROUP, VERSION, scene.namespace, PLURAL, model_registry(scene, "churn")
        )
        serving(scene, "bytes served across the upgrade")
        before = pods_of(scene)
        generation = (
            client.AppsV1Api(api()).read_namespaced_deployment("churn", scene.namespace)
        ).metadata.generation
        old_operator = operator_pod(operator_namespace)
        helm(
            operator_namespace,
            "upgrade",
            RELEASE,
            str(ROOT / "charts" / "gitstage"),
            *values,
            "--wait",
        )
        new_operator = eventually(
            lambda: operator_pod(operator_namespace), what="the upgraded operator"
        )
        # The upgraded operator has reconciled (a request it handled) without touching the pods.
        requested = f"after-upgrade-{uuid.uuid4().hex[:6]}"
        client.CustomObjectsApi(api()).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            scene.namespace,
            PLURAL,
            "churn",
            {"metadata": {"annotations": {"gitstage.dev/requestedAt": requested}}},
        )
        eventually(
            lambda: registry_status(scene, "churn").get("lastHandledReconcileAt") == requested,
            timeout=120,
            what="a reconcile by the upgraded operator",
        )
        after = client.AppsV1Api(api()).read_namespaced_deployment("churn", scene.namespace)
        assert after.metadata.generation == generation, f"upgrade from {commit[:12]} re-rendered"
        assert pods_of(scene) == before
        assert served_bytes(scene, "churn") == b"bytes served across the upgrade"
        # And it keeps working: the next assignment rolls out.
        v2 = scene.commit("bytes after the upgrade")
        scene.tag("churn@v2.0.0", v2)
        scene.tag("churn#prod#2", v2)
        serving(scene, "bytes after the upgrade")
        assert old_operator is not None
        assert new_operator is not None
    finally:
        helm(operator_namespace, "uninstall", RELEASE, "--wait")
        client.CoreV1Api(api()).delete_namespace(operator_namespace)


def lease_holder(namespace: str) -> str | None:
    try:
        lease = client.CoordinationV1Api(api()).read_namespaced_lease(
            f"{RELEASE}-operator",
            namespace,  # the chart's gitstage.leaseName
        )
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return None
        raise
    return lease.spec.holder_identity if lease.spec else None


def rollouts_to(scene: Scene, version: str) -> list[client.CoreV1Event]:
    events = client.CoreV1Api(api()).list_namespaced_event(scene.namespace).items
    return [e for e in events if e.reason == "RollingOut" and f"to {version} " in (e.message or "")]


def pinned_commit(scene: Scene) -> str | None:
    found = client.AppsV1Api(api()).read_namespaced_deployment("ha", scene.namespace)
    return (found.spec.template.metadata.annotations or {}).get("gitstage.dev/commit")


def test_the_standby_takes_over_a_rollout_when_the_leader_is_killed(scene: Scene) -> None:
    install_crd()
    operator_namespace = f"gitstage-ha-{uuid.uuid4().hex[:6]}"
    values = [*chart_values(scene.cluster.image, scene.namespace), "--set", "replicas=2"]
    helm(
        operator_namespace,
        "install",
        RELEASE,
        str(ROOT / "charts" / "gitstage"),
        "--create-namespace",
        *values,
        "--wait",
    )
    core = client.CoreV1Api(api())
    try:
        leader = eventually(lambda: lease_holder(operator_namespace), what="a leader elected")
        v1 = scene.commit("ha bytes v1")
        scene.tag("churn@v10.0.0", v1)
        scene.tag("churn#ha#1", v1)
        body = model_registry(scene, "ha")
        body["spec"]["deployments"][0]["stage"] = "ha"
        client.CustomObjectsApi(api()).create_namespaced_custom_object(
            GROUP, VERSION, scene.namespace, PLURAL, body
        )
        eventually(lambda: served_bytes(scene, "ha") == b"ha bytes v1", timeout=300, what="v1")
        generation = (
            client.AppsV1Api(api())
            .read_namespaced_deployment("ha", scene.namespace)
            .metadata.generation
        )
        # Mid-rollout: the leader has re-pinned the Deployment to v2, its pods are not ready yet.
        v2 = scene.commit("ha bytes v2")
        scene.tag("churn@v11.0.0", v2)
        scene.tag("churn#ha#2", v2)
        eventually(lambda: pinned_commit(scene) == v2, timeout=60, what="the rollout started")
        killed_at = time.monotonic()
        core.delete_namespaced_pod(leader, operator_namespace, grace_period_seconds=0)
        new_leader = eventually(
            lambda: (holder := lease_holder(operator_namespace)) != leader and holder,
            timeout=60,
            what="the standby holding the Lease",
        )
        taken_over = time.monotonic() - killed_at
        eventually(lambda: served_bytes(scene, "ha") == b"ha bytes v2", timeout=300, what="v2")
        eventually(
            lambda: (
                (registry_status(scene, "ha").get("deployments") or [{}])[0].get("rollout")
                == "Complete"
            ),
            timeout=120,
            what="the new leader reporting the rollout Complete",
        )
        finished = time.monotonic() - killed_at
        deployment = client.AppsV1Api(api()).read_namespaced_deployment("ha", scene.namespace)
        assert deployment.metadata.generation == generation + 1  # applied once, not twice
        (event,) = rollouts_to(scene, "v11.0.0")
        assert (event.count or 1) == 1
        # No stage change is lost across the failover.
        v3 = scene.commit("ha bytes v3")
        scene.tag("churn@v12.0.0", v3)
        scene.tag("churn#ha#3", v3)
        eventually(lambda: served_bytes(scene, "ha") == b"ha bytes v3", timeout=300, what="v3")
        print(  # the README's figure
            f"\nha: leader {leader} killed mid-rollout; {new_leader} took the Lease after"
            f" {taken_over:.1f}s and finished the rollout {finished:.1f}s after the kill"
        )
    finally:
        helm(operator_namespace, "uninstall", RELEASE, "--wait")
        core.delete_namespace(operator_namespace)

"""The operator killed mid-rollout (SIGKILL, no graceful shutdown) and started again: the new
process finishes the rollout without redoing it (same Deployment generation, no new ReplicaSet),
and catches up with stage tags pushed while it was down.

The operator runs as a real `gitstage operator` process, so its restart loses all memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.conftest import Kube
from tests.e2e.kubeutil import api, eventually, install_crd, namespace_with_git_secret
from tests.e2e.test_operator import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    Registry,
    condition,
    custom,
    deployment,
    get_registry,
    model_registry,
    running_pods,
    served_commit,
    settled,
)

pytestmark = pytest.mark.e2e

PASSWORD = "restart-" + uuid.uuid4().hex[:6]


@dataclass
class Scene:
    namespace: str
    registry: Registry
    url: str
    kubeconfig: Path
    cache: Path
    logs: Path


@pytest.fixture
def scene(kube: Kube, tmp_path: Path) -> Iterator[Scene]:
    root = tmp_path / "git"
    bare = root / "registry.git"
    bare.parent.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "true"], check=True)
    install_crd()
    namespace = namespace_with_git_secret("restart", "alice", PASSWORD)
    with GitHttpServer(root, auth=BasicAuth("alice", PASSWORD), host=kube.node_address) as server:
        url = server.url("registry.git")
        clone = tmp_path / "clone"
        authed = url.replace("http://", f"http://alice:{PASSWORD}@")
        subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
        registry = Registry(clone, url)
        registry.git("checkout", "-q", "-b", "main")
        (clone / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.txt\n")
        yield Scene(
            namespace, registry, url, kube.kubeconfig, tmp_path / "cache", tmp_path / "logs"
        )
    client.CoreV1Api(api()).delete_namespace(namespace)


@contextmanager
def operator_process(scene: Scene, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """`gitstage operator` watching the scene's namespace; killed on exit if still running."""
    scene.logs.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "KUBECONFIG": str(scene.kubeconfig),
        "GITSTAGE_CACHE_DIR": str(scene.cache),
        "PYTHONPATH": str(ROOT / "operator"),
    }
    command = [sys.executable, "-m", "gitstage", "operator", "-n", scene.namespace]
    with (scene.logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "--liveness", "", "--metrics-port", "0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def replica_sets(scene: Scene, deployment_name: str) -> set[str]:
    found = client.AppsV1Api(api()).list_namespaced_replica_set(scene.namespace)
    return {
        rs.metadata.name
        for rs in found.items
        if rs.metadata is not None
        and any(ref.name == deployment_name for ref in rs.metadata.owner_references or [])
    }


def generation(scene: Scene, name: str) -> int:
    found = deployment(scene, name)
    assert found is not None
    assert found.metadata is not None
    return int(found.metadata.generation or 0)


def observed_version(scene: Scene, name: str) -> str | None:
    status = get_registry(scene, name).get("status") or {}
    bindings = status.get("deployments") or [{}]
    value = bindings[0].get("observedVersion")
    return str(value) if value is not None else None


def ready(scene: Scene, name: str) -> bool:
    return (condition(scene, name, "Ready") or {}).get("status") == "True"


def test_a_crash_mid_rollout_resumes_without_duplicate_work(scene: Scene) -> None:
    registry = scene.registry
    c1 = registry.commit("weights-1")
    registry.tag("churn@v1.0.0", c1)
    registry.tag("churn#prod#1", c1)
    body = model_registry(scene, "churn")
    custom().create_namespaced_custom_object(GROUP, VERSION, scene.namespace, PLURAL, body)

    with operator_process(scene, "first") as first:
        eventually(lambda: served_commit(scene, "churn-prod") == c1, timeout=90, what="v1")
        eventually(lambda: settled(scene, "churn-prod"), timeout=90, what="v1 settled")
        c2 = registry.commit("weights-2")
        registry.tag("churn@v2.0.0", c2)
        registry.tag("churn#prod#2", c2)
        eventually(lambda: served_commit(scene, "churn-prod") == c2, timeout=60, what="v2 applied")
        first.send_signal(signal.SIGKILL)  # the rollout has begun; the status is not written yet
        first.wait(timeout=30)

    rolled = generation(scene, "churn-prod")
    sets = replica_sets(scene, "churn-prod")
    assert len(sets) == 2  # v1's and v2's

    with operator_process(scene, "second") as second:
        eventually(
            lambda: observed_version(scene, "churn") == "v2.0.0" and ready(scene, "churn"),
            timeout=90,
            what="the restarted operator reports v2 Ready",
        )
        assert generation(scene, "churn-prod") == rolled  # not applied again
        assert replica_sets(scene, "churn-prod") == sets  # no new ReplicaSet, no pod restart
        assert running_pods(scene, c2) == 2
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=30)

    c3 = registry.commit("weights-3")  # registered and promoted while no operator runs
    registry.tag("churn@v3.0.0", c3)
    registry.tag("churn#prod#3", c3)
    with operator_process(scene, "third") as third:
        eventually(lambda: served_commit(scene, "churn-prod") == c3, timeout=90, what="v3")
        eventually(
            lambda: observed_version(scene, "churn") == "v3.0.0" and ready(scene, "churn"),
            timeout=90,
            what="v3 Ready",
        )
        assert generation(scene, "churn-prod") == rolled + 1
        assert len(replica_sets(scene, "churn-prod")) == 3
        third.terminate()
        assert third.wait(timeout=60) == 0
    for log in scene.logs.glob("*.log"):
        assert PASSWORD not in log.read_text()

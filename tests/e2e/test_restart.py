"""The operator killed mid-rollout (SIGKILL, no graceful shutdown) and started again: the new
process finishes the rollout without redoing it (same Deployment generation, no new ReplicaSet),
and catches up with stage tags pushed while it was down. And the API server cut off from a
running operator while a promotion arrives: the rollout happens once it answers again.

The operator runs as a real `gitstage operator` process, so its restart loses all memory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from gitstage.dev.git_server import BasicAuth
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
from tests.support import exported_metrics
from tests.support.cuttable_relay import CuttableRelay
from tests.support.git_server import CountingGitServer

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
    server: CountingGitServer


@pytest.fixture
def scene(kube: Kube, tmp_path: Path) -> Iterator[Scene]:
    root = tmp_path / "git"
    bare = root / "registry.git"
    bare.parent.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "true"], check=True)
    install_crd()
    namespace = namespace_with_git_secret("restart", "alice", PASSWORD)
    auth = BasicAuth("alice", PASSWORD)
    with CountingGitServer(root, auth=auth, host=kube.node_address) as server:
        url = server.url("registry.git")
        clone = tmp_path / "clone"
        authed = url.replace("http://", f"http://alice:{PASSWORD}@")
        subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
        registry = Registry(clone, url)
        registry.git("checkout", "-q", "-b", "main")
        (clone / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.txt\n")
        yield Scene(
            namespace,
            registry,
            url,
            kube.kubeconfig,
            tmp_path / "cache",
            tmp_path / "logs",
            server,
        )
    client.CoreV1Api(api()).delete_namespace(namespace)


@contextmanager
def operator_process(
    scene: Scene, name: str, metrics_port: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """`gitstage operator` watching the scene's namespace; killed on exit if still running."""
    scene.logs.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "KUBECONFIG": str(scene.kubeconfig),
        "GITSTAGE_CACHE_DIR": str(scene.cache),
        "PYTHONPATH": str(ROOT / "operator"),
    }
    command = [sys.executable, "-m", "gitstage", "operator", "-n", scene.namespace, "--liveness="]
    command += ["--metrics-port", str(metrics_port), "--metrics-address", "127.0.0.1"]
    with (scene.logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            command,
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


def serve_v1(scene: Scene) -> str:
    """churn v1.0.0 registered and assigned to prod, served by a ModelRegistry: v1's commit."""
    c1 = scene.registry.commit("weights-1")
    scene.registry.tag("churn@v1.0.0", c1)
    scene.registry.tag("churn#prod#1", c1)
    body = model_registry(scene, "churn")
    custom().create_namespaced_custom_object(GROUP, VERSION, scene.namespace, PLURAL, body)
    return c1


def test_a_crash_mid_rollout_resumes_without_duplicate_work(scene: Scene) -> None:
    registry = scene.registry
    c1 = serve_v1(scene)

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


def reconciles(port: int, name: str) -> float:
    """How many reconciles of `name` the operator behind `port` has finished (0 until it serves)."""
    try:
        scraped = exported_metrics.scrape(f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return 0.0
    return sum(
        value
        for (sample, labels), value in scraped.items()
        if sample == "gitstage_reconciles_total" and ("registry", name) in labels
    )


def test_a_restart_leaves_the_status_alone_until_the_first_poll_answers(scene: Scene) -> None:
    """A new process knows nothing its predecessor did not write: reconciling before its first
    poll must not rewrite the status (which flapped every registry's Ready on a restart)."""
    serve_v1(scene)
    with operator_process(scene, "first") as first:
        eventually(lambda: ready(scene, "churn") or None, timeout=120, what="v1 Ready")
        eventually(lambda: settled(scene, "churn-prod") or None, timeout=90, what="settled")
        first.terminate()
        assert first.wait(timeout=60) == 0
    before = get_registry(scene, "churn")
    # No kopf bookkeeping on the registry: no change handlers, so no diff base or finalizer.
    assert not before["metadata"].get("finalizers")
    assert not [k for k in before["metadata"].get("annotations") or {} if "handled" in k]

    port = free_port()
    scene.server.hold()  # the new process's first poll waits in the server
    try:
        with operator_process(scene, "second", metrics_port=port) as second:
            eventually(lambda: reconciles(port, "churn") >= 1 or None, timeout=60, what="reconcile")
            # Its poll may reach the server after that first reconcile: held there, it has not
            # answered, so the reconcile came before any poll did.
            eventually(lambda: scene.server.waiting.is_set() or None, timeout=30, what="held poll")
            held = get_registry(scene, "churn")
            assert held["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
            scene.server.release()
            eventually(lambda: reconciles(port, "churn") >= 2 or None, timeout=60, what="polled")
            after = get_registry(scene, "churn")
            assert after["status"] == before["status"]  # nothing new: nothing written
            second.terminate()
            assert second.wait(timeout=60) == 0
    finally:
        scene.server.release()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kubeconfig_via(kubeconfig: Path, port: int, into: Path) -> Path:
    """`kubeconfig` with its cluster's server moved to loopback `port` (the API server's
    certificate names 127.0.0.1)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    into.write_text(yaml.safe_dump(config))
    return into


def api_port(kubeconfig: Path) -> int:
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    port = urlsplit(server).port
    assert port is not None
    return port


def test_a_promotion_while_the_api_server_is_cut_off_rolls_out_once_it_answers(
    scene: Scene, tmp_path: Path
) -> None:
    """Each reconcile fails while the operator cannot reach the API server (connections reset,
    then refused); none of that may end the registry's worker."""
    c1 = serve_v1(scene)
    with closing(CuttableRelay(api_port(scene.kubeconfig))) as relay:
        via_relay = kubeconfig_via(scene.kubeconfig, relay.port, tmp_path / "kubeconfig")
        cut_off = replace(scene, kubeconfig=via_relay)
        with operator_process(cut_off, "cut") as process:
            eventually(lambda: served_commit(scene, "churn-prod") == c1, timeout=90, what="v1")
            eventually(lambda: ready(scene, "churn") or None, timeout=90, what="v1 Ready")
            relay.cut()
            c2 = scene.registry.commit("weights-2")  # the poller reaches git, not the API server
            scene.registry.tag("churn@v2.0.0", c2)
            scene.registry.tag("churn#prod#2", c2)
            log = scene.logs / "cut.log"
            # urllib3's own retry line: the operator's client (kopf's watches use aiohttp) was
            # refused, i.e. a reconcile of the new version failed at least once.
            eventually(
                lambda: "Failed to establish a new connection" in log.read_text() or None,
                timeout=60,
                what="a reconcile failing while the API server is cut off",
            )
            relay.restore()
            eventually(
                lambda: served_commit(scene, "churn-prod") == c2, timeout=90, what="v2 after"
            )
            eventually(
                lambda: observed_version(scene, "churn") == "v2.0.0" and ready(scene, "churn"),
                timeout=120,
                what="v2 Ready",
            )
            assert process.poll() is None
            process.terminate()
            assert process.wait(timeout=60) == 0
    logged = (scene.logs / "cut.log").read_text()
    assert "API error 0 cannot reach the API server" in logged  # one line naming the cause
    assert "reconcile failed" not in logged  # and no failure of another kind

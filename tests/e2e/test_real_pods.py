"""Real pods: the image built from the Dockerfile runs the operator (installed by the chart with
`helm install --wait`, in-cluster configuration, the chart's ServiceAccount) and the fetcher
init container on a real kubelet node; the model server serves the fetched bytes, and a pushed
stage tag changes them.

The session's cluster has one real node (containerd, runc, the CNI bridge, kube-proxy); the
git server listens on the node's bridge address so that pods (the operator's and the
fetchers') reach it. The chart's operator is cluster-wide while this module runs and is
uninstalled after it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gitstage.dev.binaries import binaries_dir
from gitstage.dev.demo import MODEL_PORT, model_server
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.conftest import Kube
from tests.e2e.kubeutil import api, eventually, install_crd, namespace_with_git_secret, run_git
from tests.support.dvc_project import DvcProject
from tests.support.http_files import FileHttpServer
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server
from tests.support.ssh_git_server import SshGitServer, SshKeyPair

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "gitstage.dev", "v1alpha1", "modelregistries"
OPERATOR_NAMESPACE = "gitstage-system"
PASSWORD = "s3cret-" + uuid.uuid4().hex[:6]


@dataclass
class RealCluster:
    node_address: str  # where servers for pods listen
    image: str  # the gitstage image imported into the node


@pytest.fixture(scope="module")
def real(kube: Kube) -> RealCluster:
    """The session's cluster, when it is ours: a real node with the built image imported."""
    if kube.mode != "local":
        pytest.skip("real pods need the local cluster (its node address and imported image)")
    return RealCluster(kube.node_address, kube.image)


@dataclass
class Scene:
    cluster: RealCluster
    root: Path
    clone: Path
    url: str
    namespace: str
    clock: int = 0

    def git(self, *args: str, date: int | None = None) -> str:
        return run_git(self.clone, *args, date=date)

    def commit(self, model: str | None, artifact: str = "churn") -> str:
        """Commit `model` as the artifact's file (None: delete the file)."""
        (self.clone / "models").mkdir(exist_ok=True)
        path = self.clone / "models" / f"{artifact}.bin"
        if model is None:
            path.unlink()
        else:
            path.write_text(model)
        self.git("add", "-A")
        self.git("commit", "-qm", f"{artifact}: {model}")
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, rev: str) -> None:
        self.clock = max(self.clock + 2, int(time.time()) + 2)
        self.git("tag", "-a", name, "-m", name, rev, date=self.clock)
        self.git("push", "-q", "origin", f"refs/tags/{name}")


@pytest.fixture(scope="module")
def scene(real: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("git")
    bare = root / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "true"], check=True)
    namespace = namespace_with_git_secret("pods", "alice", PASSWORD)
    auth = BasicAuth("alice", PASSWORD)
    with GitHttpServer(root, auth=auth, host=real.node_address) as server:
        url = server.url("registry.git")
        clone = root / "clone"
        authed = url.replace("http://", f"http://alice:{PASSWORD}@")
        subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
        scene = Scene(real, root, clone, url, namespace)
        scene.git("checkout", "-q", "-b", "main")
        (clone / "artifacts.yaml").write_text(
            "churn:\n  type: model\n  path: models/churn.bin\n"
            "fraud:\n  type: model\n  path: models/fraud.bin\n"
            "scoring:\n  type: model\n  path: models/scoring.bin\n"
        )
        with chart_operator(real):
            yield scene


@contextmanager
def chart_operator(real: RealCluster) -> Iterator[None]:
    """The chart's operator pod, from the built image; uninstalled afterwards."""
    repository, tag = real.image.rsplit(":", 1)
    helm = [str(binaries_dir() / "helm"), "-n", OPERATOR_NAMESPACE]
    install_crd()  # the session's CRD (other modules create it too): not the release's
    # The API server's Pod Security admission holds the chart's pod to the restricted standard.
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
    client.CoreV1Api(api()).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=OPERATOR_NAMESPACE, labels=restricted))
    )
    install = subprocess.run(
        [
            *helm,
            "install",
            "gitstage",
            str(ROOT / "charts" / "gitstage"),
            "--set",
            "crds.enabled=false",
            "--set",
            f"image.repository={repository}",
            "--set",
            f"image.tag={tag}",
            "--set",
            "image.pullPolicy=IfNotPresent",
            "--wait",
            "--timeout",
            "180s",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    try:
        yield
    finally:
        subprocess.run(
            [*helm, "uninstall", "gitstage", "--wait"],
            capture_output=True,
            check=False,
            timeout=300,
        )
        client.CoreV1Api(api()).delete_namespace(OPERATOR_NAMESPACE)


def operator_pod_runs() -> None:
    """Fail at once (with the operator's log) if the chart's operator pod stopped running."""
    core = client.CoreV1Api(api())
    pods = core.list_namespaced_pod(OPERATOR_NAMESPACE).items
    running = [p for p in pods if p.status.phase == "Running"]
    if not running:
        phases = [(p.metadata.name, p.status.phase) for p in pods]
        raise AssertionError(f"the operator pod is not running: {phases}")


def model_registry(
    scene: Scene,
    name: str,
    artifact: str = "churn",
    *,
    url: str | None = None,
    secret: str = "git-auth",
    fetcher_secret: str | None = None,
) -> dict[str, Any]:
    template = {"spec": {"containers": [model_server(scene.cluster.image)]}}
    deployment: dict[str, Any] = {
        "name": name,
        "artifact": artifact,
        "stage": "prod",
        "modelPath": "/model",
        "template": template,
    }
    if fetcher_secret is not None:
        deployment["fetcher"] = {"secretRef": {"name": fetcher_secret}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelRegistry",
        "metadata": {"name": name, "namespace": scene.namespace},
        "spec": {
            "source": {
                "url": url or scene.url,
                "secretRef": {"name": secret},
                "interval": "2s",
            },
            "deployments": [deployment],
        },
    }


def served_bytes(scene: Scene, deployment: str, artifact: str = "churn") -> bytes | None:
    """What a ready pod of `deployment` answers for the model file, through its pod IP."""
    core = client.CoreV1Api(api())
    pods = core.list_namespaced_pod(
        scene.namespace, label_selector=f"gitstage.dev/deployment={deployment}"
    ).items
    answers = []
    for pod in pods:
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        if ready and pod.status.pod_ip and pod.metadata.deletion_timestamp is None:
            url = f"http://{pod.status.pod_ip}:{MODEL_PORT}/{artifact}.bin"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answers.append(response.read())
            except OSError:
                return None
    # During a rollout old and new pods both answer: only a single answer is settled.
    return answers[0] if len(set(answers)) == 1 else None


def serves(
    scene: Scene, deployment: str, expected: str, artifact: str = "churn", timeout: float = 180
) -> None:
    def probe() -> bool:
        operator_pod_runs()
        return served_bytes(scene, deployment, artifact) == expected.encode()

    eventually(
        probe,
        timeout=timeout,
        what=f"{deployment} serving {expected!r}",
    )


def registry_status(scene: Scene, name: str) -> dict[str, Any]:
    body = client.CustomObjectsApi(api()).get_namespaced_custom_object(
        GROUP, VERSION, scene.namespace, PLURAL, name
    )
    status: dict[str, Any] = body.get("status") or {}
    return status


def condition(scene: Scene, name: str, kind: str) -> dict[str, Any]:
    conditions = registry_status(scene, name).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


def test_a_stage_tag_rolls_out_the_fetched_bytes_and_an_unassign_rolls_back(scene: Scene) -> None:
    v1 = scene.commit("model bytes v1")
    scene.tag("churn@v1.0.0", v1)
    scene.tag("churn#prod#1", v1)
    client.CustomObjectsApi(api()).create_namespaced_custom_object(
        GROUP, VERSION, scene.namespace, PLURAL, model_registry(scene, "churn")
    )
    serves(scene, "churn", "model bytes v1", timeout=300)

    v2 = scene.commit("model bytes v2")
    scene.tag("churn@v2.0.0", v2)
    scene.tag("churn#prod#2", v2)
    serves(scene, "churn", "model bytes v2")

    scene.tag("churn#prod!#3", v2)  # unassign v2: prod falls back to v1
    serves(scene, "churn", "model bytes v1")
    eventually(
        lambda: condition(scene, "churn", "Ready").get("status") == "True",
        what="Ready after the rollback",
    )


def test_a_fetch_that_fails_in_the_pod_keeps_the_previous_version_and_says_why(
    scene: Scene,
) -> None:
    good = scene.commit("fraud bytes v1", "fraud")
    scene.tag("fraud@v1.0.0", good)
    scene.tag("fraud#prod#1", good)
    client.CustomObjectsApi(api()).create_namespaced_custom_object(
        GROUP, VERSION, scene.namespace, PLURAL, model_registry(scene, "fraud", "fraud")
    )
    serves(scene, "fraud", "fraud bytes v1", "fraud")
    # A version whose commit lacks the artifact's file: the operator resolves it from the tags,
    # and only the fetcher in the pod finds out.
    broken = scene.commit(None, "fraud")
    scene.tag("fraud@v2.0.0", broken)
    scene.tag("fraud#prod#2", broken)
    ready = eventually(
        lambda: (c := condition(scene, "fraud", "Ready")).get("reason") == "FetchFailed" and c,
        timeout=240,
        what="Ready=False FetchFailed",
    )
    assert ready["status"] == "False"
    assert "fetcher exited" in ready["message"]
    assert "models/fraud.bin" in ready["message"]  # the fetcher's own one-line error
    assert PASSWORD not in ready["message"]
    assert served_bytes(scene, "fraud", "fraud") == b"fraud bytes v1"  # the previous pods serve
    events = (
        client.CoreV1Api(api())
        .list_namespaced_event(scene.namespace, field_selector="involvedObject.name=fraud")
        .items
    )
    assert any(e.reason == "FetchFailed" for e in events)


def test_the_built_image_is_what_the_pods_run(scene: Scene) -> None:
    core = client.CoreV1Api(api())
    (operator,) = core.list_namespaced_pod(OPERATOR_NAMESPACE).items
    assert operator.spec.containers[0].image == scene.cluster.image
    assert operator.spec.service_account_name == "gitstage"
    assert operator.status.container_statuses[0].restart_count == 0
    pods = core.list_namespaced_pod(
        scene.namespace, label_selector="gitstage.dev/deployment=churn"
    ).items
    assert pods
    for pod in pods:
        fetcher = next(c for c in pod.status.init_container_statuses or [])
        assert fetcher.name == "gitstage-fetch"
        assert fetcher.image.endswith(scene.cluster.image.split("/", 1)[1])
        assert fetcher.state.terminated is not None
        assert fetcher.state.terminated.exit_code == 0


def test_an_ssh_source_rolls_out_inside_the_real_image(scene: Scene) -> None:
    """The operator pod polls and the fetcher fetches over SSH, with the Secret's key and
    known_hosts (the image's OpenSSH client, host keys checked)."""
    key = SshKeyPair.generate()
    with SshGitServer(scene.root, [key], host=scene.cluster.node_address) as ssh:
        secret = {"identity": key.private_openssh, "known_hosts": ssh.known_hosts}
        client.CoreV1Api(api()).create_namespaced_secret(
            scene.namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name="git-ssh"), string_data=secret),
        )
        body = model_registry(scene, "viassh", url=ssh.url("registry.git"), secret="git-ssh")
        client.CustomObjectsApi(api()).create_namespaced_custom_object(
            GROUP, VERSION, scene.namespace, PLURAL, body
        )
        serves(scene, "viassh", "model bytes v1")  # prod holds v1 after the rollback above
        assert ssh.stats.sessions >= 2  # the operator's poll and the pod's fetch
        status = registry_status(scene, "viassh")
        assert key.private_openssh.splitlines()[1] not in str(status)


POLICY = "rules:\n  prod:\n    signed_by: [release@example.com]\n"


def test_a_signed_tag_policy_is_enforced_inside_the_real_image(
    scene: Scene, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The operator pod verifies SSH-signed stage tags (the image's ssh-keygen): a signed prod
    assignment rolls out, a forged unsigned one is refused while the signed version serves."""
    key = tmp_path_factory.mktemp("keys") / "release"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release", "-f", str(key)],
        check=True,
    )
    bare = scene.root / "policed.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "true"], check=True)
    url = scene.url.replace("registry.git", "policed.git")
    clone = scene.root / "policed"
    authed = url.replace("http://", f"http://alice:{PASSWORD}@")
    subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
    policed = Scene(scene.cluster, scene.root, clone, url, scene.namespace)
    policed.git("checkout", "-q", "-b", "main")
    policed.git("config", "gpg.format", "ssh")
    policed.git("config", "user.signingkey", str(key))
    (clone / ".gitstage").mkdir()
    (clone / ".gitstage" / "policy.yaml").write_text(POLICY)
    signer = "release@example.com " + key.with_suffix(".pub").read_text()
    (clone / ".gitstage" / "allowed_signers").write_text(signer)
    (clone / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.bin\n")
    good = policed.commit("signed model")
    policed.tag("churn@v1.0.0", good)
    policed.clock += 2
    policed.git("tag", "-s", "churn#prod#1", "-m", "prod", good, date=policed.clock)
    policed.git("push", "-q", "origin", "refs/tags/churn#prod#1")
    body = model_registry(policed, "policed", url=url)
    client.CustomObjectsApi(api()).create_namespaced_custom_object(
        GROUP, VERSION, scene.namespace, PLURAL, body
    )
    serves(policed, "policed", "signed model")

    forged = policed.commit("forged model")
    policed.tag("churn@v2.0.0", forged)
    policed.tag("churn#prod#2", forged)  # plain `git tag -a`: unsigned
    refused = eventually(
        lambda: (
            (c := condition(policed, "policed", "Ready")).get("reason") == "PolicyViolation" and c
        ),
        timeout=120,
        what="Ready=False PolicyViolation",
    )
    assert "churn#prod#2" in refused["message"]
    assert served_bytes(policed, "policed") == b"signed model"


def test_a_dvc_artifact_from_an_http_remote_is_served(
    scene: Scene, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The fetcher in the pod reads the .dvc file at the commit and downloads the object from
    the DVC HTTP remote that `.dvc/config` names, verifying its md5."""
    base = tmp_path_factory.mktemp("dvc")
    (base / "remote").mkdir()
    weights = bytes(range(256)) * 400  # 100 KiB of model weights, not text
    with FileHttpServer(base / "remote", host=scene.cluster.node_address) as files:
        dvc = DvcRegistry.create(scene, base, "dvcreg", weights)
        dvc.project.set_remote("store", files.url)
        dvc.promote("v1.0.0", 1, dvc.publish("the DVC remote over HTTP"))
        dvc.deploy("dvcweights")
        eventually(
            lambda: served_bytes(dvc.scene, "dvcweights", "weights") == weights,
            timeout=180,
            what="the DVC weights served",
        )


@dataclass
class DvcRegistry:
    """A DVC project (weights.bin tracked by DVC) whose commits and dated GTO tags are pushed to
    a bare repository that the scene's git server serves."""

    project: DvcProject
    scene: Scene  # its clone is the project: dated tags pushed to the bare repository

    @classmethod
    def create(cls, scene: Scene, base: Path, name: str, weights: bytes) -> DvcRegistry:
        """Weights pushed to the local DVC remote `base/remote`, committed but not published."""
        project = DvcProject.with_weights(base / "work", base / "remote", weights)
        bare = scene.root / f"{name}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        project.git("remote", "add", "origin", str(bare))
        url = scene.url.replace("registry.git", f"{name}.git")
        return cls(project, Scene(scene.cluster, scene.root, project.path, url, scene.namespace))

    def publish(self, message: str) -> str:
        commit = self.project.commit(message)
        self.project.git("push", "-q", "origin", "main")
        return commit

    def promote(self, version: str, number: int, commit: str) -> None:
        self.scene.tag(f"weights@{version}", commit)
        self.scene.tag(f"weights#prod#{number}", commit)

    def deploy(self, name: str, fetcher_secret: str | None = None) -> None:
        body = model_registry(
            self.scene, name, "weights", url=self.scene.url, fetcher_secret=fetcher_secret
        )
        client.CustomObjectsApi(api()).create_namespaced_custom_object(
            GROUP, VERSION, self.scene.namespace, PLURAL, body
        )


def create_secret(scene: Scene, name: str, data: dict[str, str]) -> None:
    client.CoreV1Api(api()).create_namespaced_secret(
        scene.namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def test_a_dvc_artifact_from_an_s3_compatible_remote_is_served(
    scene: Scene, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The remote is `s3://models/dvcstore` with DVC's `endpointurl` naming an S3-compatible
    server on the node address; the fetcher (the image's s3 extra) signs with the keys of the
    Secret named by `fetcher.secretRef`."""
    base = tmp_path_factory.mktemp("s3")
    weights = random.Random(3).randbytes(300_000)
    with S3Server(host=scene.cluster.node_address) as s3:
        dvc = DvcRegistry.create(scene, base, "s3reg", weights)
        s3.create_bucket("models")
        assert s3.upload_tree(base / "remote", "models", "dvcstore") == 1
        dvc.project.set_remote("store", "s3://models/dvcstore")
        dvc.project.dvc("remote", "modify", "store", "endpointurl", s3.url)
        commit = dvc.publish("the DVC remote on S3")
        dvc.promote("v1.0.0", 1, commit)
        keys = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        bound = {"AWS_DEFAULT_REGION": "us-east-1", "GITSTAGE_DVC_ORIGIN": s3.url}
        create_secret(scene, "s3-keys", {**keys, **bound})
        before = s3.stats.requests
        dvc.deploy("s3weights", fetcher_secret="s3-keys")
        eventually(
            lambda: served_bytes(dvc.scene, "s3weights", "weights") == weights,
            timeout=240,
            what="the weights from S3 served",
        )
        assert s3.stats.requests > before
        assert SECRET_KEY not in str(registry_status(scene, "s3weights"))


@pytest.mark.fault
def test_a_dvc_fetch_that_fails_in_the_pod_keeps_the_previous_version_and_says_why(
    scene: Scene, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A missing DVC object, then a remote the Secret's credentials do not open: each time the
    pod's fetcher fails, the ModelRegistry says why, and the v1 pods keep serving."""
    base = tmp_path_factory.mktemp("dvcfail")
    (base / "remote").mkdir()
    weights = random.Random(4).randbytes(100_000)
    auth = BasicAuth("dvc", "dvc-" + uuid.uuid4().hex[:8])
    other = BasicAuth("dvc", "moved-" + uuid.uuid4().hex[:8])
    host = scene.cluster.node_address
    with (
        FileHttpServer(base / "remote", auth=auth, host=host) as files,
        FileHttpServer(base / "remote", auth=other, host=host) as moved,
    ):
        dvc = DvcRegistry.create(scene, base, "dvcfail", weights)
        dvc.project.set_remote("store", files.url)
        dvc.promote("v1.0.0", 1, dvc.publish("the remote over HTTP, with basic auth"))
        dvc_credentials = {
            "GITSTAGE_DVC_USERNAME": "dvc",
            "GITSTAGE_DVC_PASSWORD": auth.password,
            "GITSTAGE_DVC_ORIGIN": files.url,  # not `moved`'s: a move gets no credentials
        }
        create_secret(scene, "dvc-auth", dvc_credentials)
        dvc.deploy("dvcfail", fetcher_secret="dvc-auth")
        eventually(
            lambda: served_bytes(dvc.scene, "dvcfail", "weights") == weights,
            timeout=240,
            what="v1 served",
        )

        dvc.project.write("models/weights.bin", b"weights v2, never pushed")
        dvc.project.dvc("add", "-q", "models/weights.bin")
        dvc.promote("v2.0.0", 2, dvc.publish("weights v2 (dvc push forgotten)"))
        missing = fetch_failure(scene, "dvcfail", "is missing from DVC remote")
        assert missing["status"] == "False"
        assert served_bytes(dvc.scene, "dvcfail", "weights") == weights

        dvc.project.set_remote("store", moved.url)
        dvc.promote("v3.0.0", 3, dvc.publish("the remote moved to another server"))
        fetch_failure(scene, "dvcfail", "refused access (HTTP 401)")
        assert moved.stats.denied >= 1
        assert served_bytes(dvc.scene, "dvcfail", "weights") == weights
        events = client.CoreV1Api(api()).list_namespaced_event(
            scene.namespace, field_selector="involvedObject.name=dvcfail"
        )
        said = str(registry_status(scene, "dvcfail")) + str([e.message for e in events.items])
        assert "refused access" in said
        assert auth.password not in said
        assert other.password not in said


def fetch_failure(scene: Scene, name: str, fragment: str) -> dict[str, Any]:
    """The Ready condition once it is FetchFailed with `fragment` in its message."""

    def failed() -> dict[str, Any] | None:
        ready = condition(scene, name, "Ready")
        said = ready.get("reason") == "FetchFailed" and fragment in ready.get("message", "")
        return ready if said else None

    return eventually(failed, timeout=240, what=f"Ready=False FetchFailed ({fragment})")


def fetcher_processes(pod_uid: str) -> list[int]:
    """Host PIDs of `gitstage fetch` in the pod (its cgroup path carries the pod's UID)."""
    marks = (f"pod{pod_uid}", f"pod{pod_uid.replace('-', '_')}")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroups = (entry / "cgroup").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        if b"fetch" in argv and any(mark in cgroups for mark in marks):
            pids.append(int(entry.name))
    return pids


def fetcher_exit_codes(core: client.CoreV1Api, pod: client.V1Pod) -> set[int]:
    """Exit codes the pod's fetcher reports, in its current and its last state."""
    status = core.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace).status
    codes = set()
    for fetcher in status.init_container_statuses or []:
        for state in (fetcher.state, fetcher.last_state):
            if state is not None and state.terminated is not None:
                codes.add(state.terminated.exit_code)
    return codes


@pytest.mark.fault
def test_a_fetcher_killed_mid_download_is_restarted_by_the_kubelet_and_completes(
    scene: Scene, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGKILL of the fetcher while the DVC remote holds the object half sent: the kubelet
    restarts the init container, the fetch starts over and the pod serves the exact bytes."""
    base = tmp_path_factory.mktemp("killed")
    (base / "remote").mkdir()
    weights = random.Random(5).randbytes(4 << 20)
    with FileHttpServer(base / "remote", host=scene.cluster.node_address) as files:
        dvc = DvcRegistry.create(scene, base, "killed", weights)
        dvc.project.set_remote("store", files.url)
        dvc.promote("v1.0.0", 1, dvc.publish("the remote over HTTP"))
        files.hold_after = 1 << 20
        dvc.deploy("killed")
        eventually(files.holding.is_set, timeout=240, what="the fetcher 1 MiB into the object")
        core = client.CoreV1Api(api())
        (pod,) = core.list_namespaced_pod(
            scene.namespace, label_selector="gitstage.dev/deployment=killed"
        ).items
        pids = eventually(lambda: fetcher_processes(pod.metadata.uid), what="the fetcher's PID")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # The retry pauses at the same point until the release: the kill is seen meanwhile.
        eventually(lambda: fetcher_exit_codes(core, pod) & {137}, what="the kill seen (137)")
        files.release()
        eventually(
            lambda: served_bytes(dvc.scene, "killed", "weights") == weights,
            timeout=240,
            what="the whole weights served after the restart",
        )
    pod = core.read_namespaced_pod(pod.metadata.name, scene.namespace)
    (fetcher,) = pod.status.init_container_statuses
    assert fetcher.restart_count >= 1
    assert fetcher.state.terminated.exit_code == 0
    eventually(
        lambda: condition(scene, "killed", "Ready").get("status") == "True",
        what="Ready once the restarted fetch completed",
    )


def shared_volume(scene: Scene, name: str) -> Path:
    """A ReadWriteMany PersistentVolume on the node's disk (hostPath, as an admin would give a
    single-node cluster) and its bound claim `name`; the directory is returned."""
    directory = scene.root / name
    directory.mkdir()
    os.chown(directory, 10001, 10001)  # the image's user: the fetcher writes there
    core = client.CoreV1Api(api())
    volume = f"{scene.namespace}-{name}"
    core.create_persistent_volume(
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=volume),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "1Gi"},
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                host_path=client.V1HostPathVolumeSource(path=str(directory), type="Directory"),
                claim_ref=client.V1ObjectReference(namespace=scene.namespace, name=name),
            ),
        )
    )
    core.create_namespaced_persistent_volume_claim(
        scene.namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                volume_name=volume,
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
    )
    return directory


def fetcher_logs(scene: Scene, deployment: str) -> list[str]:
    """The fetcher's log in each pod of the Deployment that has finished fetching."""
    core = client.CoreV1Api(api())
    pods = core.list_namespaced_pod(
        scene.namespace, label_selector=f"gitstage.dev/deployment={deployment}"
    ).items
    lines = []
    for pod in pods:
        statuses = pod.status.init_container_statuses or []
        if any(s.name == "gitstage-fetch" and s.state.terminated for s in statuses):
            log = core.read_namespaced_pod_log(
                pod.metadata.name, scene.namespace, container="gitstage-fetch"
            )
            lines.append(log)
    return lines


def test_a_service_fronts_the_pods_and_a_model_cache_fetches_once_per_commit(
    scene: Scene,
) -> None:
    """A binding with `service:` gets a ClusterIP Service (its URL in status) that answers the
    model through kube-proxy; with `modelCache:` the first pod fetches the commit onto the shared
    volume and the others, and a scale-out, find it there."""
    directory = shared_volume(scene, "models")
    commit = scene.commit("model bytes for the front door", artifact="scoring")
    scene.tag("scoring@v1.0.0", commit)
    scene.tag("scoring#prod#1", commit)
    body = model_registry(scene, "frontdoor", "scoring")
    binding = body["spec"]["deployments"][0]
    binding.update(
        replicas=2,
        service={"type": "ClusterIP"},
        modelCache={"claimName": "models"},
        progressDeadlineSeconds=900,
        revisionHistoryLimit=3,
    )
    custom = client.CustomObjectsApi(api())
    custom.create_namespaced_custom_object(GROUP, VERSION, scene.namespace, PLURAL, body)
    serves(scene, "frontdoor", "model bytes for the front door", artifact="scoring", timeout=300)
    state = eventually(
        lambda: next(iter(registry_status(scene, "frontdoor").get("deployments") or []), None),
        what="the Deployment's state",
    )
    url = f"http://frontdoor.{scene.namespace}.svc:{MODEL_PORT}"
    eventually(lambda: registry_status(scene, "frontdoor")["deployments"][0].get("url") == url)
    service = client.CoreV1Api(api()).read_namespaced_service("frontdoor", scene.namespace)
    cluster_ip = service.spec.cluster_ip
    # kube-proxy programs the Service once the EndpointSlice lists the ready pods: under load
    # that follows the pods' readiness by seconds (the port refuses connections meanwhile).
    answer = eventually(
        lambda: through_cluster_ip(cluster_ip, "scoring.bin"),
        timeout=60,
        what="the model through the Service's ClusterIP",
    )
    assert answer == b"model bytes for the front door"
    deployment = client.AppsV1Api(api()).read_namespaced_deployment("frontdoor", scene.namespace)
    assert (deployment.spec.progress_deadline_seconds, deployment.spec.revision_history_limit) == (
        900,
        3,
    )
    cached = directory / "gitstage" / commit / "scoring" / "scoring.bin"
    assert cached.read_bytes() == b"model bytes for the front door"
    logs = eventually(
        lambda: (found := fetcher_logs(scene, "frontdoor")) and len(found) == 2 and found
    )
    assert sum("gitstage: fetched" in log for log in logs) == 1, logs
    assert sum(" is already in " in log for log in logs) == 1, logs
    # Scale out: the third pod downloads nothing.
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        scene.namespace,
        PLURAL,
        "frontdoor",
        [{"op": "replace", "path": "/spec/deployments/0/replicas", "value": 3}],
        _content_type="application/json-patch+json",
    )
    logs = eventually(
        lambda: (found := fetcher_logs(scene, "frontdoor")) and len(found) == 3 and found
    )
    assert sum("gitstage: fetched" in log for log in logs) == 1, logs
    assert state["name"] == "frontdoor"


def through_cluster_ip(cluster_ip: str, path: str) -> bytes | None:
    """The model server's answer through the Service, or None while kube-proxy has not
    programmed it yet."""
    try:
        with urllib.request.urlopen(
            f"http://{cluster_ip}:{MODEL_PORT}/{path}", timeout=10
        ) as answer:
            return bytes(answer.read())
    except ConnectionRefusedError:
        return None
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError):
            return None
        raise

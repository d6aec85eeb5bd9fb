"""The demo: local control plane with a real node, a registry served over smart HTTP with basic
auth, the operator, and a data scientist's pushes (assign, re-assign, unassign) rolling a
Deployment whose init container (the image built from the Dockerfile) fetches the model and
whose server answers with it: the demo prints what the model server says after each push."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from gitstage.dev.cluster import ImageArchive, LocalCluster
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from gitstage.dev.ports import reserve_port
from gitstage.resources.crd import custom_resource_definition

NAMESPACE = "gitstage-demo"
MODEL_PORT = 8080
# The model server of the demo and the real-pod tests: serves the fetched model directory.
MODEL_SERVER = (
    "import functools, http.server;"
    "handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory='/model');"
    f"http.server.ThreadingHTTPServer(('', {MODEL_PORT}), handler).serve_forever()"
)
Say = Callable[[str], None]


class DemoError(RuntimeError):
    pass


class DemoRepo:
    """A data scientist's clone of the registry: commits models, writes GTO tags, pushes."""

    def __init__(self, root: Path, url: str) -> None:
        self.clone = root / "clone"
        self.clock = int(time.time())
        subprocess.run(
            ["git", "clone", "-q", url, str(self.clone)], check=True, capture_output=True
        )
        self.git("checkout", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Data Scientist",
            "GIT_AUTHOR_EMAIL": "ds@example.com",
            "GIT_COMMITTER_NAME": "Data Scientist",
            "GIT_COMMITTER_EMAIL": "ds@example.com",
            "GIT_COMMITTER_DATE": f"{self.clock} +0000",
        }
        return subprocess.run(
            ["git", "-C", str(self.clone), *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def commit(self, weights: str) -> str:
        self.clock = max(self.clock + 1, int(time.time()))
        (self.clone / "artifacts.yaml").write_text(
            "churn:\n  type: model\n  path: models/churn.txt\n"
        )
        (self.clone / "models").mkdir(exist_ok=True)
        (self.clone / "models" / "churn.txt").write_text(weights)
        self.git("add", "-A")
        self.git("commit", "-qm", f"train churn: {weights}")
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, rev: str) -> None:
        self.clock = max(self.clock + 1, int(time.time()))
        self.git("tag", "-a", name, "-m", name, rev)
        self.git("push", "-q", "origin", f"refs/tags/{name}")


def model_server(image: str) -> dict[str, object]:
    """The serving container: Python's HTTP server from the gitstage image, on the model."""
    return {
        "name": "server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-c", MODEL_SERVER],
        "ports": [{"containerPort": MODEL_PORT}],
        "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 10001},
    }


def model_registry(url: str, image: str) -> dict[str, object]:
    return {
        "apiVersion": "gitstage.dev/v1alpha1",
        "kind": "ModelRegistry",
        "metadata": {"name": "churn", "namespace": NAMESPACE},
        "spec": {
            "source": {"url": url, "interval": "2s", "secretRef": {"name": "registry-auth"}},
            "deployments": [
                {
                    "name": "churn-prod",
                    "artifact": "churn",
                    "stage": "prod",
                    "replicas": 2,
                    "modelPath": "/model",
                    "template": {"spec": {"containers": [model_server(image)]}},
                }
            ],
        },
    }


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: str) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout


def wait_for_commit(kubectl: Kubectl, commit: str, say: Say, timeout: float = 120) -> float:
    started = time.monotonic()
    path = "{.spec.template.metadata.annotations.gitstage\\.dev/commit}"
    while time.monotonic() - started < timeout:
        try:
            served = kubectl(
                "get", "deployment", "churn-prod", "-n", NAMESPACE, f"-o=jsonpath={path}"
            )
        except DemoError:
            served = ""
        if served == commit:
            return time.monotonic() - started
        time.sleep(0.5)  # polling interval
    raise DemoError(f"the Deployment did not reach commit {commit[:7]} within {timeout:.0f}s")


def served(kubectl: Kubectl) -> set[str]:
    """What each ready pod's model server answers for the model file, through the pod IP."""
    pods = yaml.safe_load(
        kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "gitstage.dev/deployment=churn-prod", "-o", "json"
        )
    )["items"]
    answers = set()
    for pod in pods:
        conditions = pod.get("status", {}).get("conditions", [])
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        address = pod.get("status", {}).get("podIP")
        if ready and address and not pod["metadata"].get("deletionTimestamp"):
            url = f"http://{address}:{MODEL_PORT}/churn.txt"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answers.add(response.read().decode())
            except OSError:
                answers.add("(no answer)")
    return answers


def wait_for_answer(kubectl: Kubectl, weights: str, started: float, timeout: float = 180) -> float:
    """Until every ready pod serves `weights` (old pods gone); seconds since `started`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served(kubectl) == {weights}:
            return time.monotonic() - started
        time.sleep(0.5)  # polling interval
    raise DemoError(f"the model server did not answer {weights!r} within {timeout:.0f}s")


@contextmanager
def operator_process(
    kubeconfig: str, log: Path, fetcher_image: str, dashboard_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "KUBECONFIG": kubeconfig, "GITSTAGE_FETCHER_IMAGE": fetcher_image}
    command = [sys.executable, "-m", "gitstage", "operator", "--liveness=", "--namespace"]
    command += [NAMESPACE, f"--dashboard-port={dashboard_port}"]  # on 127.0.0.1 only
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_demo(state_dir: Path, say: Say) -> None:
    with tempfile.TemporaryDirectory(prefix="gitstage-demo-") as tmp:
        root = Path(tmp)
        password = secrets.token_hex(8)
        bare = root / "registry.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "true"], check=True)
        subprocess.run(
            ["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True
        )
        say("building the gitstage image from the Dockerfile (cached after the first run) ...")
        from gitstage.dev.images import gitstage_image

        built = gitstage_image()
        say(f"starting the control plane and a real node (state in {state_dir}) ...")
        with (
            LocalCluster(
                state_dir, images=[ImageArchive(built.reference, built.archive)]
            ) as cluster,
            GitHttpServer(
                root, auth=BasicAuth("ds", password), host=cluster.info.node_address
            ) as server,
        ):
            info = cluster.info
            kubectl = Kubectl(Path(cluster.bin_dir) / "kubectl", info.kubeconfig)
            url = server.url("registry.git")
            say(f"registry served at {url} (basic auth); kubeconfig {info.kubeconfig}")
            repo = DemoRepo(root, url.replace("http://", f"http://ds:{password}@"))
            v1 = repo.commit(OCTOBER)
            repo.tag("churn@v1.0.0", v1)
            repo.tag("churn#prod#1", v1)
            say(f"pushed churn@v1.0.0 and churn#prod#1 -> {v1[:7]}")
            kubectl("apply", "-f", "-", stdin=yaml.safe_dump(custom_resource_definition()))
            kubectl("create", "namespace", NAMESPACE)
            kubectl(
                "create",
                "secret",
                "generic",
                "registry-auth",
                "-n",
                NAMESPACE,
                "--from-literal=username=ds",
                f"--from-literal=password={password}",
            )
            kubectl("wait", "--for=condition=Established", "crd/modelregistries.gitstage.dev")
            manifest = model_registry(url, built.reference)
            kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
            log = state_dir / "logs" / "operator.log"
            port = reserve_port()
            with operator_process(info.kubeconfig, log, built.reference, port):
                say(f"the dashboard follows along at http://127.0.0.1:{port}/ (read-only)")
                _rollouts(kubectl, repo, say, v1)
                say(dashboard_line(f"http://127.0.0.1:{port}/"))
                events = kubectl(
                    "get",
                    "events",
                    "-n",
                    NAMESPACE,
                    "--field-selector=involvedObject.kind=ModelRegistry",
                    "-o=custom-columns=REASON:.reason,MESSAGE:.message",
                )
                say("events of the ModelRegistry:\n" + events.rstrip())
    say("demo finished; everything stopped")


def dashboard_line(url: str) -> str:
    """What the dashboard's models page says of churn's Deployment, once it says `serving`."""
    deadline = time.monotonic() + 30
    badge = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                page = response.read().decode()
        except OSError:
            page = ""
        badge = badge_text(page)
        if badge.startswith("serving"):
            break
        time.sleep(0.5)  # polling interval
    return f"the dashboard's models page shows churn-prod: {badge or 'nothing yet'}"


def badge_text(page: str) -> str:
    """The first Deployment badge's kind and version, from the models page's markup."""
    found = re.search(
        r'data-badge="([^"]+)"[^>]*><span class="badge-kind">[^<]*</span> ([^<]*)<', page
    )
    return f"{found[1]} {found[2].strip()}" if found else ""


def _rollouts(kubectl: Kubectl, repo: DemoRepo, say: Say, v1: str) -> None:
    """v1 rolls out, a push rolls out v2, an unassign rolls back: each time the model server's
    answer is printed, timed from the push."""
    started = time.monotonic()
    seconds = wait_for_commit(kubectl, v1, say)
    say(f"Deployment pinned to v1.0.0 in {seconds:.1f}s")
    answered(kubectl, say, OCTOBER, started)
    show(kubectl, say)
    v2 = repo.commit(NOVEMBER)
    repo.tag("churn@v2.0.0", v2)
    started = time.monotonic()
    repo.tag("churn#prod#2", v2)
    say(f"pushed churn@v2.0.0 and churn#prod#2 -> {v2[:7]}")
    say(f"Deployment pinned to v2.0.0 in {wait_for_commit(kubectl, v2, say):.1f}s")
    answered(kubectl, say, NOVEMBER, started)
    show(kubectl, say)
    started = time.monotonic()
    repo.tag("churn#prod!#3", v2)
    say("pushed churn#prod!#3 (unassign v2.0.0 from prod)")
    say(f"Deployment back on v1.0.0 in {wait_for_commit(kubectl, v1, say):.1f}s")
    answered(kubectl, say, OCTOBER, started)
    show(kubectl, say)


OCTOBER = "weights trained on October data"
NOVEMBER = "weights trained on November data"


def answered(kubectl: Kubectl, say: Say, weights: str, started: float) -> None:
    seconds = wait_for_answer(kubectl, weights, started)
    say(f"the model server answers {weights!r} ({seconds:.1f}s after the push, pods ready)")


def show(kubectl: Kubectl, say: Say) -> None:
    """The printer columns, once the operator reports the rollout complete."""
    path = "{.status.deployments[0].rollout}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = kubectl("get", "modelregistry", "churn", "-n", NAMESPACE, f"-o=jsonpath={path}")
        if state == "Complete":
            break
        time.sleep(0.5)  # polling interval
    say(
        "$ kubectl get modelregistries,deployments -n "
        + NAMESPACE
        + "\n"
        + kubectl("get", "modelregistries,deployments", "-n", NAMESPACE).rstrip()
    )

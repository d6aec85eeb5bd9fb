"""What the operator benchmarks share: the local control plane, the operator as a subprocess
(so its RSS is its own), a signed webhook, scrapes of /metrics, and percentiles.

Not a benchmark itself; imported by push_latency.py and scale.py (run with PYTHONPATH=operator:.).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families
from tests.support.ports import reserve_port

from gitstage.dev.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "gitstage.dev", "v1alpha1", "modelregistries"
T = TypeVar("T")


def log(message: str) -> None:
    """Progress on stderr; figures go to stdout."""
    print(message, file=sys.stderr, flush=True)


def wait_for(probe: Callable[[], T | None], what: str, timeout: float, step: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(step)  # polling interval between probes
    raise SystemExit(f"error: {what} not reached within {timeout:.0f}s")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of 20 values is the 10th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Kube:
    kubeconfig: Path
    api: client.ApiClient

    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)


@contextmanager
def control_plane(state_dir: Path, extra_nodes: int = 0) -> Iterator[Kube]:
    """A LocalCluster with the ModelRegistry CRD, and `extra_nodes` more fake KWOK nodes."""
    cluster = LocalCluster(state_dir, nodes="kwok")
    started = time.monotonic()
    info = cluster.start()
    try:
        log(f"control plane up in {time.monotonic() - started:.1f}s")
        configuration = client.Configuration()
        config.load_kube_config(config_file=info.kubeconfig, client_configuration=configuration)
        kube = Kube(Path(info.kubeconfig), client.ApiClient(configuration))
        crd = yaml.safe_load((ROOT / "crds" / "modelregistries.gitstage.dev.yaml").read_text())
        client.ApiextensionsV1Api(kube.api).create_custom_resource_definition(crd)
        for number in range(1, extra_nodes + 1):
            kube.core().create_node(_fake_node(f"kwok-node-{number}"))
        wait_for(lambda: _crd_served(kube), "the CRD to be served", 30)
        yield kube
    finally:
        cluster.stop()


def _fake_node(name: str) -> dict[str, Any]:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


def _crd_served(kube: Kube) -> bool:
    try:
        kube.custom().list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
    except ApiException:
        return False
    return True


def namespace_with_secret(kube: Kube, name: str, username: str, password: str) -> None:
    kube.core().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="git-auth"),
        string_data={"username": username, "password": password},
    )
    kube.core().create_namespaced_secret(name, secret)


def model_registry(
    name: str, url: str, interval: str, bindings: list[tuple[str, str]], replicas: int = 1
) -> dict[str, Any]:
    """A ModelRegistry serving each (artifact, stage) of `bindings` as `<name>-<n>`."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelRegistry",
        "metadata": {"name": name},
        "spec": {
            "source": {"url": url, "interval": interval, "secretRef": {"name": "git-auth"}},
            "deployments": [
                {
                    "name": f"{name}-{number}",
                    "artifact": artifact,
                    "stage": stage,
                    "replicas": replicas,
                    "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
                }
                for number, (artifact, stage) in enumerate(bindings)
            ],
        },
    }


@dataclass
class Memory:
    """MiB from /proc/PID/status: resident now, peak, and its anonymous and file-backed parts."""

    rss: float
    peak: float
    anon: float
    file: float


@dataclass
class Operator:
    """`gitstage operator` in a subprocess, with its webhook and metrics ports on loopback."""

    process: subprocess.Popen[bytes]
    webhook_url: str
    metrics_url: str
    log_path: Path

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident memory of the operator process, from /proc."""
        memory = self.memory()
        return memory.rss, memory.peak

    def memory(self) -> Memory:
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value
        kib = {key: int(value.split()[0]) / 1024 for key, value in fields.items() if "kB" in value}
        return Memory(kib["VmRSS"], kib["VmHWM"], kib["RssAnon"], kib["RssFile"] + kib["RssShmem"])

    def exposition(self) -> str:
        """The text of the operator's /metrics."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:  # noqa: S310
            return str(response.read().decode())

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.exposition()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def total(self, metric: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(
            value
            for (name, found), value in self.scrape().items()
            if name == metric and wanted <= set(found)
        )


@contextmanager
def operator_process(
    kube: Kube,
    scratch: Path,
    secret: str,
    extra_args: tuple[str, ...] = (),
    *,
    launcher: tuple[str, ...] = ("-m", "gitstage"),
    extra_env: dict[str, str] | None = None,
) -> Iterator[Operator]:
    """`launcher`: what python runs instead of `-m gitstage` (a wrapper taking its arguments)."""
    webhook_port, metrics_port = reserve_port(), reserve_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "PYTHONPATH": f"{ROOT / 'operator'}:{os.environ.get('PYTHONPATH', '')}",
        "GITSTAGE_CACHE_DIR": str(scratch / "mirrors"),
        "GITSTAGE_WEBHOOK_SECRET": secret,
        **(extra_env or {}),
    }
    log_path = scratch / "operator.log"
    command = [
        sys.executable,
        *launcher,
        "operator",
        "--standalone",
        "--liveness=",
        f"--webhook-port={webhook_port}",
        "--webhook-address=127.0.0.1",
        f"--metrics-port={metrics_port}",
        "--metrics-address=127.0.0.1",
        *extra_args,
    ]
    with log_path.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    running = Operator(
        process,
        f"http://127.0.0.1:{webhook_port}",
        f"http://127.0.0.1:{metrics_port}/metrics",
        log_path,
    )
    try:
        wait_for(lambda: _answers(running), "the operator's metrics endpoint", 60, 0.2)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(operator: Operator) -> bool:
    if operator.process.poll() is not None:
        tail = operator.log_path.read_text(errors="replace").splitlines()[-5:]
        raise SystemExit("error: the operator exited:\n  " + "\n  ".join(tail))
    try:
        with urllib.request.urlopen(operator.metrics_url, timeout=2):  # noqa: S310 - loopback
            return True
    except (urllib.error.URLError, OSError):
        return False


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return int(response.status)

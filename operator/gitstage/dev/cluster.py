"""A real, local Kubernetes control plane: etcd, kube-apiserver (RBAC, token auth),
kube-controller-manager, kube-scheduler, and either one real node (kubelet, containerd, runc,
the CNI bridge, kube-proxy: see gitstage.dev.node) or KWOK with one fake node.

    with LocalCluster(state_dir) as cluster:      # or cluster.start() / cluster.stop()
        cluster.info.kubeconfig                    # admin kubeconfig path
        cluster.info.node_address                  # where pods reach this machine (real node)

    LocalCluster(state_dir, nodes="kwok")          # fake nodes: hundreds of pods, no containers

Readiness is polled with deadlines; any failure, Ctrl-C or SIGTERM during the start stops every
process started so far. Attached clusters (the default) also die with the process that started
them; `detached=True` clusters outlive it (`gitstage dev cluster up`) and are stopped by pid.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from gitstage.dev import node_config, pki
from gitstage.dev.binaries import binaries_dir
from gitstage.dev.errors import ClusterError
from gitstage.dev.images import pause_image
from gitstage.dev.logs import log_excerpt
from gitstage.dev.node import ImageArchive, RealNode
from gitstage.dev.ports import reserve_port
from gitstage.dev.processes import raise_on_sigterm, spawn, stop_all

__all__ = ["ClusterError", "ClusterInfo", "ImageArchive", "LocalCluster"]

CONTROLLER_QPS = 200  # the controller-manager's client rate limit
CONTROLLER_SYNCS = 50  # Deployments and ReplicaSets the controller-manager syncs at once

STATE_FILE = "cluster.json"
KWOK_NODE_NAME = "kwok-node-0"
NODES = ("real", "kwok")


@dataclass
class ClusterInfo:
    state_dir: str
    kubeconfig: str
    api_url: str
    token: str
    ca_file: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    bin_dir: str = ""
    nodes: str = "kwok"
    # The address pods reach this machine at (servers for pods bind it); loopback with KWOK.
    node_address: str = "127.0.0.1"
    node_name: str = KWOK_NODE_NAME

    def save(self) -> None:
        path = Path(self.state_dir) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)

    @classmethod
    def load(cls, state_dir: Path) -> ClusterInfo | None:
        path = state_dir / STATE_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))


# klog's E/F levels, and the words Go programs use when they give up (flag errors come first,
# then a long usage text that would push them out of a plain tail).
# klog's E and F lines, apt's and mmdebstrap's "E: ", and the words of most other tools.
def free_port() -> int:
    """A loopback port reserved for a server we start next (see `gitstage.dev.ports`)."""
    return reserve_port("127.0.0.1")


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, on_fail: Callable[[], str] = str
) -> None:
    """Poll `check` until it holds or the deadline passes (then raise, adding `on_fail()`)."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(delay)  # polling interval, not a wait for the condition itself
        delay = min(delay * 1.5, 1.0)
    raise ClusterError(f"{what} not ready after {timeout:.0f}s{on_fail()}")


class LocalCluster:
    def __init__(
        self,
        state_dir: Path,
        *,
        bin_dir: Path | None = None,
        timeout: float = 180,
        detached: bool = False,
        nodes: str = "real",
        images: Sequence[ImageArchive] = (),
    ) -> None:
        if nodes not in NODES:
            raise ClusterError(f"nodes must be one of {', '.join(NODES)}, not {nodes!r}")
        self.state_dir = state_dir
        self._bin_dir = bin_dir
        self.timeout = timeout
        self.detached = detached
        self.nodes = nodes
        self.images = list(images)
        self._node: RealNode | None = None
        self.node_leftovers: list[str] = []
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._ports: dict[str, int] = {}
        self._info: ClusterInfo | None = None
        self._restore_sigterm: Callable[[], None] = lambda: None

    @property
    def info(self) -> ClusterInfo:
        if self._info is None:
            raise ClusterError("the cluster is not started")
        return self._info

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ClusterInfo:
        # An attached cluster keeps SIGTERM as an exception until stop(), so that a terminated
        # test run tears it down in order; a detached one only while it starts.
        self._restore_sigterm = raise_on_sigterm()
        try:
            info = self._start()
        except BaseException:
            self.stop()
            raise
        if self.detached:
            self._restore_sigterm()
        return info

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = binaries_dir()
        return self._bin_dir

    def _start(self) -> ClusterInfo:
        bins = self.bin_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pki_dir = self.state_dir / "pki"
        pki_dir.mkdir(exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        sa_key, sa_pub = pki.write_service_account_keys(self.state_dir)
        tokens, token = pki.write_token_file(self.state_dir)
        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        self._ports = {"etcd": etcd_port, "etcd-peer": etcd_peer, "kube-apiserver": api_port}
        address = "127.0.0.1"
        if self.nodes == "real":
            self._node = RealNode(
                self.state_dir / "node", self.state_dir / "logs", detached=self.detached
            )
            self._node.prepare(api_port, tokens)
            address = self._node.gateway
        ca = pki.write_ca(pki_dir, "ca")
        serving = pki.write_serving_cert(
            pki_dir,
            "apiserver",
            ca,
            sorted({"127.0.0.1", address, _KUBERNETES_SERVICE_IP}),
            [
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        self._start_etcd(bins, etcd_port, etcd_peer)
        api_url = f"https://127.0.0.1:{api_port}"
        self._spawn(
            "kube-apiserver",
            bins,
            self._apiserver_args(etcd_port, api_port, sa_key, sa_pub, tokens, serving=serving),
        )
        self._wait("kube-apiserver", lambda: _http_ok(f"{api_url}/readyz", token))
        kubeconfig = self.state_dir / "admin.kubeconfig"
        kubeconfig.write_text(pki.kubeconfig(api_url, token, ca.cert))
        kubeconfig.chmod(0o600)
        self._info = ClusterInfo(
            str(self.state_dir),
            str(kubeconfig),
            api_url,
            token,
            str(ca.cert),
            ports=dict(self._ports),
            bin_dir=str(bins.resolve()),
            nodes=self.nodes,
            node_address=address,
            node_name=KWOK_NODE_NAME if self._node is None else node_config.NODE_NAME,
        )
        self._start_controllers(bins, kubeconfig, sa_key, ca.cert)
        if self._node is None:
            self._start_kwok(bins, kubeconfig)
            self._create_node(api_url, token)
        else:
            self._start_real_node(bins, api_url, token, ca.cert)
        node = self._info.node_name
        self._wait(
            "node " + node,
            lambda: self._node_ready(api_url, token, node),
            log=self.nodes if self._node is None else "kubelet",
        )
        self._info.pids = {name: p.pid for name, p in self._processes.items()}
        if self._node is not None and self._node.reaper is not None:
            self._info.pids["node-reaper"] = self._node.reaper.pid
        self._info.save()
        return self._info

    def _start_real_node(self, bins: Path, api_url: str, token: str, ca: Path) -> None:
        node = self._node
        assert node is not None
        # The API server reaches kubelets with this client certificate (logs, exec).
        _request(
            f"{api_url}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            token,
            "POST",
            _kubelet_api_binding(),
        )

        def ready(what: str) -> None:
            self._processes.update(node.processes)
            self._wait(what, node.containerd_answers)

        images = [_pause_image(), *self.images]
        node.start(bins, api_url, ca, images=images, ready=ready)
        self._processes.update(node.processes)
        healthz = f"http://127.0.0.1:{node.kube_proxy_healthz}/healthz"
        self._wait("kube-proxy", lambda: _http_ok(healthz))

    def _wait(self, what: str, check: Callable[[], bool], log: str = "") -> None:
        """Poll `check`, failing at once (naming it) if any started component exits."""

        def probe() -> bool:
            self._raise_if_a_component_exited()
            return check()

        wait_until(what, probe, self.timeout, lambda: self._log_tail(log or what))

    def _raise_if_a_component_exited(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise ClusterError(f"{name} stopped{self._log_tail(name)}")

    def _start_etcd(self, bins: Path, port: int, peer: int) -> None:
        client = f"http://127.0.0.1:{port}"
        self._spawn(
            "etcd",
            bins,
            [
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=4294967296",
            ],
        )
        self._wait("etcd", lambda: _http_ok(f"{client}/health"))

    def _apiserver_args(
        self,
        etcd: int,
        port: int,
        sa_key: Path,
        sa_pub: Path,
        tokens: Path,
        *,
        serving: pki.CertPair,
    ) -> list[str]:
        return [
            f"--etcd-servers=http://127.0.0.1:{etcd}",
            f"--secure-port={port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            *self._node_facing_args(),
            f"--service-cluster-ip-range={node_config.SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            f"--token-auth-file={tokens}",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]

    def _node_facing_args(self) -> list[str]:
        if self._node is None:
            return [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--authorization-mode=RBAC",
                "--endpoint-reconciler-type=none",
            ]
        client = self._node.kubelet_client
        # Pods reach the API server through the `kubernetes` Service, whose endpoint is the
        # bridge address; the node's nft guard keeps every other interface out.
        return [
            "--bind-address=0.0.0.0",
            f"--advertise-address={self._node.gateway}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={client.cert}",
            f"--kubelet-client-key={client.key}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _start_controllers(self, bins: Path, kubeconfig: Path, sa_key: Path, ca: Path) -> None:
        common = [
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
        ]
        self._spawn(
            "kube-controller-manager",
            bins,
            [
                *common,
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={ca}",
                "--use-service-account-credentials=false",
                "--controllers=*,-nodeipam",
                # Defaults (20 qps, burst 30) make the controllers, not the operator, the limit
                # when a thousand Deployments arrive at once (benchmarks/scale.py).
                f"--kube-api-qps={CONTROLLER_QPS}",
                f"--kube-api-burst={CONTROLLER_QPS * 2}",
                # Defaults (5 each): a thousand new Deployments waited up to 90 s for their
                # ReplicaSets, the operator having long created them (benchmarks/scale.py).
                f"--concurrent-deployment-syncs={CONTROLLER_SYNCS}",
                f"--concurrent-replicaset-syncs={CONTROLLER_SYNCS}",
            ],
        )
        self._spawn("kube-scheduler", bins, common)

    def _start_kwok(self, bins: Path, kubeconfig: Path) -> None:
        self._spawn(
            "kwok",
            bins,
            [
                f"--kubeconfig={kubeconfig}",
                # Only its own fake nodes: a real kubelet's node is never faked.
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.0.1.0/24",
                "--node-ip=10.0.1.1",
                "--node-lease-duration-seconds=40",
            ],
        )

    def _spawn(self, name: str, bins: Path, args: list[str]) -> None:
        log = self.state_dir / "logs" / f"{name}.log"
        self._processes[name] = spawn([str(bins / name), *args], log, detached=self.detached)

    def _log_tail(self, name: str) -> str:
        path = self.state_dir / "logs" / f"{name}.log"
        process = self._processes.get(name)
        exited = f" (exited {process.returncode})" if process and process.poll() is not None else ""
        if not path.is_file():
            return exited
        lines = log_excerpt(path.read_text(errors="replace").strip().splitlines())
        return f"{exited}; from {path}:\n  " + "\n  ".join(lines)

    def _create_node(self, api_url: str, token: str) -> None:
        resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": KWOK_NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": KWOK_NODE_NAME, "type": "kwok"},
            },
            "status": {"allocatable": resources, "capacity": resources},
        }
        _request(f"{api_url}/api/v1/nodes", token, "POST", node)

    def _node_ready(self, api_url: str, token: str, name: str) -> bool:
        node: Any = _request(f"{api_url}/api/v1/nodes/{name}", token)
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def stop(self) -> None:
        """SIGTERM every component, SIGKILL after one shared deadline; every process is reaped."""
        self._restore_sigterm()
        self._restore_sigterm = lambda: None
        node, self._node = self._node, None
        if node is not None:
            self.node_leftovers = node.stop()
        stop_all(list(reversed(self._processes.values())))
        self._processes.clear()


def _pause_image() -> ImageArchive:

    built = pause_image()
    return ImageArchive(built.reference, built.archive)


_KUBERNETES_SERVICE_IP = str(next(node_config.SERVICE_CIDR.hosts()))


def _kubelet_api_binding() -> dict[str, object]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "gitstage:apiserver-kubelet-client"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:kubelet-api-admin",
        },
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": "gitstage:apiserver-kubelet-client",
            }
        ],
    }


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE  # readiness probes only: the CA file may not exist yet


def _http_ok(url: str, token: str | None = None) -> bool:
    request = urllib.request.Request(url)  # noqa: S310 - loopback http(s) URLs we built
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=_INSECURE) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _request(url: str, token: str, method: str = "GET", body: object = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10, context=_INSECURE) as response:  # noqa: S310
            result: dict[str, object] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as error:
        if error.code == 404 and method == "GET":
            return {}
        raise ClusterError(f"{method} {url}: HTTP {error.code}") from None

"""A real node for the local control plane: containerd and runc from Debian, kubelet and
kube-proxy built from the pinned module, the CNI bridge, and a reaper that removes all of it.

    node = RealNode(state_dir / "node", logs, detached=False)
    node.prepare(api_port)        # lock, stale sweep, record, reaper, bridge, network guard
    ...                           # the control plane starts, advertising node.gateway
    node.start(bins, api_url, ca, images=images, ready=ready)
    node.stop()                   # the reaper sweeps: nothing is left on the machine

One real node per machine (kube-proxy's nft tables are machine-wide): a lock says so clearly.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitstage.dev import pki
from gitstage.dev.errors import ClusterError
from gitstage.dev.node_config import (
    BRIDGE,
    CNI_BIN_DIR,
    NODE_NAME,
    POD_CIDR,
    NodeLayout,
    cni_conflist,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)
from gitstage.dev.node_reaper import GLOBAL_DIR, GLOBAL_RECORD
from gitstage.dev.node_sweep import NodeRecord, leftovers_of, nft_tables_present, snapshot, sweep
from gitstage.dev.ports import reserve_port
from gitstage.dev.processes import spawn

LOCK = GLOBAL_DIR / "lock"
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
PROGRAMS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "nft", "ip")
_PR_SET_PDEATHSIG = 1
KUBELET_CLIENT_USER = "gitstage:apiserver-kubelet-client"


@dataclass(frozen=True)
class ImageArchive:
    """An image to import into the node's containerd: its reference and archive file."""

    reference: str
    archive: Path


class NodeError(ClusterError):
    """The real node cannot run here; the message names the component and why."""


class RealNode:
    def __init__(self, root: Path, logs: Path, *, detached: bool, timeout: float = 180) -> None:
        name = f"gitstage-{uuid.uuid4().hex[:8]}"
        self.layout = NodeLayout(root, f"/{name}", GLOBAL_DIR / name)
        self.logs = logs
        self.detached = detached
        self.timeout = timeout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.reaper: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self.kube_proxy_healthz = 0
        self._node_token = self._proxy_token = ""

    @property
    def gateway(self) -> str:
        return self.layout.gateway

    @property
    def kubelet_client(self) -> pki.CertPair:
        pki_dir = self.layout.root / "pki"
        return pki.CertPair(
            pki_dir / "apiserver-kubelet-client.crt", pki_dir / "apiserver-kubelet-client.key"
        )

    # -- before the control plane -----------------------------------------------------------

    def prepare(self, api_port: int, tokens: Path) -> None:
        """Everything the API server needs from the node before it starts (it reads the token
        file once: the node's and kube-proxy's tokens go in now)."""
        check_prerequisites()
        self._lock()
        stale = NodeRecord.load(GLOBAL_RECORD)
        if stale is not None:
            sweep(stale)
        busy = [f"{family} {name}" for family, name in nft_tables_present() if name == "kube-proxy"]
        if busy:
            raise NodeError(f"node: nft table {busy[0]} exists: another kube-proxy runs here")
        root = self.layout.root
        for sub in ("pki", "cni/net.d", "cni/ipam", "kubelet"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        record = snapshot(root, self.layout.cgroup_root, self.layout.run_dir)
        record.save(root / "node.json")
        record.save(GLOBAL_RECORD)
        self._start_reaper(root / "node.json")
        _make_cgroup_root(self.layout.cgroup_root)
        self._make_network(api_port)
        ca = pki.write_ca(root / "pki", "kubelet-client-ca")
        pki.write_client_cert(root / "pki", "apiserver-kubelet-client", ca, KUBELET_CLIENT_USER, [])
        self._node_token = pki.add_token(tokens, f"system:node:{NODE_NAME}", ["system:nodes"])
        self._proxy_token = pki.add_token(tokens, "system:kube-proxy", [])

    def _lock(self) -> None:
        GLOBAL_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            other = NodeRecord.load(GLOBAL_RECORD)
            where = f" (state in {other.root})" if other else ""
            raise NodeError(f"node: another real node runs on this machine{where}") from None
        self._lock_fd = fd

    def _start_reaper(self, record: Path) -> None:
        assert self._lock_fd is not None
        log = (self.logs / "node-reaper.log").open("ab")
        argv = [sys.executable, "-m", "gitstage.dev.node_reaper", str(record), str(os.getpid())]
        with log:
            self.reaper = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(self._lock_fd,),
                # Runs only sigprocmask and prctl between fork and exec.
                preexec_fn=_reaper_preexec(self.detached),  # noqa: PLW1509
                env={**os.environ, "PYTHONPATH": _package_path()},
            )
        # The reaper holds the lock now: it is released when the sweep is done.
        os.close(self._lock_fd)
        self._lock_fd = None

    def _make_network(self, api_port: int) -> None:
        gateway = f"{self.gateway}/{POD_CIDR.prefixlen}"
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"], "bridge")
        _run(["ip", "addr", "add", gateway, "dev", BRIDGE], "bridge")
        _run(["ip", "link", "set", BRIDGE, "up"], "bridge")
        _run(["nft", "-f", "-"], "nft guard", _guard_ruleset(self.gateway, api_port))

    # -- after the control plane ------------------------------------------------------------

    def start(
        self,
        bins: Path,
        api_url: str,
        ca_file: Path,
        *,
        images: Sequence[ImageArchive],
        ready: Callable[[str], None],
    ) -> None:
        """Start containerd, import `images`, start kubelet and kube-proxy.

        `ready(what)` waits for a named component (the caller knows the API and the deadlines).
        """
        layout = self.layout
        layout.containerd_dir.mkdir(parents=True, exist_ok=True)
        config = layout.containerd_dir / "config.toml"
        config.write_text(containerd_config(layout))
        (layout.cni_conf_dir / "10-gitstage.conflist").write_text(cni_conflist(layout))
        self._spawn("containerd", ["containerd", "--config", str(config)])
        ready("containerd")
        for image in images:
            self._import(image)
        self._start_kubelet(bins, api_url, ca_file)
        self._start_kube_proxy(bins, api_url, ca_file)

    def containerd_answers(self) -> bool:
        if not self.layout.containerd_socket.exists():
            return False
        result = subprocess.run(self._ctr("version"), capture_output=True, check=False, timeout=30)
        return result.returncode == 0

    def _ctr(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.layout.containerd_socket), "-n", "k8s.io", *args]

    def _import(self, image: ImageArchive) -> None:
        result = subprocess.run(
            self._ctr("images", "import", str(image.archive)),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise NodeError(f"containerd: importing {image.reference} failed: {' '.join(tail)}")

    def _start_kubelet(self, bins: Path, api_url: str, ca_file: Path) -> None:
        layout = self.layout
        kubeconfig = layout.root / "kubelet.kubeconfig"
        kubeconfig.write_text(pki.kubeconfig(api_url, self._node_token, ca_file))
        kubeconfig.chmod(0o600)
        config = layout.root / "kubelet.json"
        config.write_text(kubelet_config(layout, reserve_port(self.gateway)))
        self._spawn(
            "kubelet",
            [
                str(bins / "kubelet"),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.gateway}",
                f"--root-dir={layout.kubelet_dir}",
                f"--cert-dir={layout.root / 'pki' / 'kubelet'}",
                "--node-labels=type=real",
            ],
        )

    def _start_kube_proxy(self, bins: Path, api_url: str, ca_file: Path) -> None:
        kubeconfig = self.layout.root / "kube-proxy.kubeconfig"
        kubeconfig.write_text(pki.kubeconfig(api_url, self._proxy_token, ca_file))
        kubeconfig.chmod(0o600)
        self.kube_proxy_healthz = reserve_port("127.0.0.1")
        config = self.layout.root / "kube-proxy.json"
        config.write_text(
            kube_proxy_config(kubeconfig, self.kube_proxy_healthz, reserve_port("127.0.0.1"))
        )
        self._spawn(
            "kube-proxy",
            [str(bins / "kube-proxy"), f"--config={config}", f"--hostname-override={NODE_NAME}"],
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.processes[name] = spawn(argv, self.logs / f"{name}.log", detached=self.detached)

    # -- stop -------------------------------------------------------------------------------

    def stop(self, grace: float = 90) -> list[str]:
        """Have the reaper sweep the node; returns what is left (empty when all is gone)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        reaper, self.reaper = self.reaper, None
        if reaper is not None:
            reaper.send_signal(signal.SIGTERM)
            try:
                reaper.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                reaper.kill()
                reaper.wait()
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        self.processes.clear()
        record = NodeRecord.load(self.layout.root / "node.json")
        return [str(item) for item in leftovers_of(record)] if record else []


def check_prerequisites() -> None:
    """One-line errors for what a real node cannot do without."""
    if os.geteuid() != 0:
        raise NodeError("node: a real node needs root (containerd, runc, network namespaces)")
    missing = [program for program in PROGRAMS if shutil.which(program) is None]
    missing += [f"CNI plugin {p}" for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).is_file()]
    if missing:
        raise NodeError(
            f"node: missing {', '.join(missing)} (scripts/setup installs containerd, runc, "
            "containernetworking-plugins, nftables and iproute2)"
        )
    if (
        not Path("/sys/fs/cgroup/memory").is_dir()
        and not Path("/sys/fs/cgroup/cgroup.controllers").is_file()
    ):
        raise NodeError("node: no cgroup hierarchy mounted under /sys/fs/cgroup")


def _make_cgroup_root(cgroup_root: str) -> None:
    """kubelet wants its cgroupRoot to exist in every v1 hierarchy (the sweep removes them)."""
    for hierarchy in sorted(Path("/sys/fs/cgroup").iterdir()):
        if not (hierarchy / "tasks").exists():  # the v2 mount beside them, or not a hierarchy
            continue
        directory = hierarchy / cgroup_root.strip("/")
        directory.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset starts empty: inherit
            if (hierarchy / knob).exists():
                (directory / knob).write_text((hierarchy / knob).read_text())


def _guard_ruleset(gateway: str, api_port: int) -> str:
    """Pod traffic stays on the bridge; the API server and the gateway address answer only
    loopback and the pods, whatever else this machine is connected to."""
    return f"""table inet gitstage-node {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "{BRIDGE}" oifname != "{BRIDGE}" drop
    oifname "{BRIDGE}" iifname != "{BRIDGE}" drop
  }}
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname != {{ "lo", "{BRIDGE}" }} ip daddr {gateway} drop
    iifname != {{ "lo", "{BRIDGE}" }} tcp dport {api_port} drop
  }}
}}
"""


def _run(argv: list[str], component: str, stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise NodeError(f"node: {component}: {' '.join(argv[:3])} failed: {' '.join(tail)}")


def _reaper_preexec(detached: bool) -> Callable[[], None]:
    def arm() -> None:
        # SIGTERM blocked until the reaper waits for it, so that an early one is not lost.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        if not detached:
            import ctypes

            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return arm


def _package_path() -> str:
    """The directory holding the gitstage package, for the reaper's interpreter."""
    here = Path(__file__).resolve().parents[2]
    existing = os.environ.get("PYTHONPATH", "")
    return f"{here}{os.pathsep}{existing}" if existing else str(here)

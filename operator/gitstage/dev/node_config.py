"""Configuration files of the real node: containerd, the CNI network, kubelet and kube-proxy.

Pure text rendering from a `NodeLayout`, so that the settings this machine needs (see
`../shared/docs/real-node.md`) sit in one place with the reason for each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

NODE_NAME = "gitstage-node-0"
BRIDGE = "gs0"
CNI_NETWORK = "gitstage"
# Private ranges that exist only on this machine: nothing is routed or masqueraded out of it.
POD_CIDR = IPv4Network("10.244.0.0/24")
SERVICE_CIDR = IPv4Network("10.0.0.0/24")
SANDBOX_IMAGE = "localhost/gitstage-pause:1"
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class NodeLayout:
    """Where one node keeps its state: everything it writes lives below `root`."""

    root: Path
    cgroup_root: str
    # Unix sockets live here: a path under a deep state directory exceeds their 108 bytes.
    run_dir: Path

    @property
    def gateway(self) -> str:
        """The bridge's address: the host as pods see it (API server, git servers)."""
        return str(next(POD_CIDR.hosts()))

    @property
    def containerd_dir(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"


def containerd_config(layout: NodeLayout) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    state = layout.containerd_dir
    return f"""version = 2
root = "{state / "root"}"
state = "{state / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{layout.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{state / "opt"}"

[{cri}]
  sandbox_image = "{SANDBOX_IMAGE}"
  # No CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj below ours, so do not ask it to.
  restrict_oom_score_adj = true
  # Pod network namespaces under our state directory, so that cleanup finds every one.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{layout.cni_conf_dir}"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  # No systemd on this machine: kubelet and runc both use cgroupfs.
  SystemdCgroup = false
"""


def cni_conflist(layout: NodeLayout) -> str:
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        # No masquerade: pods reach the host through the bridge and nothing leaves the machine.
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "dataDir": str(layout.ipam_dir),
            "ranges": [[{"subnet": str(POD_CIDR), "gateway": layout.gateway}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    # containerd sets up each pod's loopback itself, with the loopback plugin of CNI_BIN_DIR.
    document = {"cniVersion": "0.4.0", "name": CNI_NETWORK, "plugins": [bridge, portmap]}
    return json.dumps(document, indent=2)


def kubelet_config(layout: NodeLayout, port: int) -> str:
    document = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.gateway,
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.root / "pki" / "kubelet-client-ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        # cgroup v1 only here, no systemd: cgroupfs, under a root of our own for cleanup.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "failSwapOn": False,
        "resolvConf": "/etc/resolv.conf",
        "registerNode": True,
        "serializeImagePulls": False,
        # A shared, busy disk must not evict the test pods or collect the imported images.
        "evictionHard": {
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "memory.available": "100Mi",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "2s",
        "syncFrequency": "5s",
        "fileCheckFrequency": "5s",
        "runtimeRequestTimeout": "5m",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "logging": {"format": "text"},
    }
    return json.dumps(document, indent=2)


def kube_proxy_config(kubeconfig: Path, healthz_port: int, metrics_port: int) -> str:
    document = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clusterCIDR": str(POD_CIDR),
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # Leave the machine's conntrack sysctls as they are.
        "conntrack": {"maxPerCore": 0, "min": 0},
        "nodePortAddresses": ["primary"],
    }
    return json.dumps(document, indent=2)

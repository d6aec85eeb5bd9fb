"""What a real node could leave on this machine, as one comparable snapshot.

Taken before a cluster starts and after it is gone, the two must be equal: processes of the
node's programs, mounts, links, network namespaces, nft tables and iptables chains, cgroups in
every hierarchy, the CNI cache, the sysctls kubelet and the CNI bridge touch, containerd's
shim sockets.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gitstage.dev.node_sweep import SYSCTLS

NODE_PROGRAMS = {"containerd", "containerd-shim-runc-v2", "kubelet", "kube-proxy", "runc", "pause"}


def node_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if Path(exe).name in NODE_PROGRAMS:
            found.append(f"{entry.name} {exe}")
    return sorted(found)


def _lines(argv: list[str]) -> list[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return [line for line in result.stdout.splitlines() if line and not line.startswith("#")]


def _listing(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def _cgroups() -> list[str]:
    root = Path("/sys/fs/cgroup")
    return sorted(
        f"{hierarchy.name}/{child.name}"
        for hierarchy in root.iterdir()
        if hierarchy.is_dir()
        for child in hierarchy.iterdir()
        if child.is_dir()
    )


def machine_state() -> dict[str, list[str]]:
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    return {
        "processes": node_processes(),
        "mounts": sorted(line.split()[4] for line in mountinfo),
        "links": sorted(os.listdir("/sys/class/net")),
        "netns": _listing(Path("/run/netns")),
        "nft tables": _lines(["nft", "list", "tables"]),
        "iptables": _lines(["iptables-save"]) + _lines(["ip6tables-save"]),
        "cgroups": _cgroups(),
        "cni cache": _listing(Path("/var/lib/cni")),
        "sysctls": [
            f"{n}={(Path('/proc/sys') / n).read_text().strip()}"
            for n in SYSCTLS
            if (Path("/proc/sys") / n).exists()
        ],
        "containerd sockets": _listing(Path("/run/containerd")),
    }


def differences(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, object]:
    """Per kind, what appeared and what vanished (empty when the machine is as it was)."""
    changed: dict[str, object] = {}
    for kind, old in before.items():
        new = after[kind]
        added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
        if added or removed:
            changed[kind] = {"added": added, "removed": removed}
    return changed

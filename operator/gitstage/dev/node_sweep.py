"""Remove everything a real node created on this machine, whatever way its run ended.

A `NodeRecord`, written before anything is created, says where the node lives (its state
directory and cgroup root) and what the machine looked like before (sysctls, iptables chains).
`sweep` is idempotent: the reaper runs it when the test run dies, `stop()` runs it, and the next
start runs it on a record left behind by a run that could not.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gitstage.dev.node_config import BRIDGE, CNI_NETWORK

CGROUP_MOUNT = Path("/sys/fs/cgroup")
# kube-proxy's tables, and ours (the guard that keeps pod traffic on this machine).
NFT_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"), ("inet", "gitstage-node"))
# What kubelet and the CNI bridge change on the host; restored to the recorded values.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
IPTABLES = ("iptables", "ip6tables")
IPTABLES_PREFIXES = ("KUBE-", "CNI-")
CNI_CACHE = Path("/var/lib/cni")
_MNT_DETACH = 2


@dataclass
class NodeRecord:
    root: str
    cgroup_root: str
    run_dir: str = ""
    sysctls: dict[str, str] = field(default_factory=dict)
    # iptables-save chain names per "iptables/filter" and so on, before the node started.
    chains: dict[str, list[str]] = field(default_factory=dict)
    # nft tables before ("ip filter"...): iptables-nft creates tables that kubelet's chains need.
    tables: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2))
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> NodeRecord | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def snapshot(root: Path, cgroup_root: str, run_dir: Path) -> NodeRecord:
    """The record of a node about to start: the machine's state it will have to restore."""
    sysctls = {name: value for name in SYSCTLS if (value := _read_sysctl(name)) is not None}
    chains = {key: sorted(names) for key, names in _iptables_chains().items()}
    tables = sorted(" ".join(t) for t in _nft_tables())
    return NodeRecord(str(root), cgroup_root, str(run_dir), sysctls, chains, tables)


def sweep(record: NodeRecord, *, deadline: float = 60) -> list[str]:
    """Undo the node; returns what could not be removed (empty when the machine is clean)."""
    until = time.monotonic() + deadline
    root = Path(record.root)
    _kill_node_processes(record, until)
    _unmount_below(root)
    leftovers = _remove_cgroups(record.cgroup_root, until)
    _remove_network(record)
    _restore_sysctls(record.sysctls)
    for sub in ("containerd", "kubelet", "cni"):
        shutil.rmtree(root / sub, ignore_errors=True)
    if record.run_dir:
        shutil.rmtree(record.run_dir, ignore_errors=True)
    return leftovers + [str(path) for path in leftovers_of(record)]


def leftovers_of(record: NodeRecord) -> list[Path | str]:
    """What a node of this record still has on the machine (for tests and the sweep's report)."""
    found: list[Path | str] = [f"pid {pid}" for pid in _node_pids(record)]
    found += [Path(m) for m in _mounts_below(Path(record.root))]
    found += [p for p in _cgroup_dirs(record.cgroup_root) if p.exists()]
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        found.append(f"link {BRIDGE}")
    found += [f"nft table {family} {name}" for family, name in nft_tables_present()]
    return found


# Processes: every process in the node's cgroups (containers, pause) and every process whose
# command line names the node's directory (containerd, its shims, kubelet, kube-proxy).


def _node_pids(record: NodeRecord) -> list[int]:
    spared = {os.getpid(), os.getppid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        if _in_cgroup(entry, record.cgroup_root) or any(
            _names(entry, path) for path in (record.root, record.run_dir) if path
        ):
            found.append(int(entry.name))
    return found


def _in_cgroup(proc: Path, cgroup_root: str) -> bool:
    try:
        lines = (proc / "cgroup").read_text().splitlines()
    except OSError:
        return False
    prefix = cgroup_root.rstrip("/") + "/"
    return any(
        (line.split(":", 2)[-1] + "/").startswith(prefix) for line in lines if line.count(":") >= 2
    )


def _names(proc: Path, root: str) -> bool:
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if any(arg.endswith(b"node_reaper") for arg in argv):  # the reaper runs this very sweep
        return False
    needle = root.encode()
    return any(needle in arg for arg in argv)


def _kill_node_processes(record: NodeRecord, until: float) -> None:
    while time.monotonic() < until:
        pids = _node_pids(record)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap_children()
        time.sleep(0.1)  # polling interval while the kernel tears the processes down


def _reap_children() -> None:
    """Collect our own killed children (the reaper's or the cluster's), so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# Mounts: containerd's rootfs overlays, kubelet's secret tmpfs, the pods' netns bind mounts.


def _mounts_below(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            found.append(point)
    return found


def _unmount_below(root: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(5):  # a detach can uncover a mount that was stacked below it
        points = sorted(set(_mounts_below(root)), key=len, reverse=True)
        if not points:
            return
        for point in points:
            libc.umount2(point.encode(), _MNT_DETACH)


# cgroups: kubelet's cgroupRoot in each v1 hierarchy (and the v2 mount beside them).


def _cgroup_dirs(cgroup_root: str) -> list[Path]:
    if not CGROUP_MOUNT.is_dir():
        return []
    relative = cgroup_root.strip("/")
    return [h / relative for h in sorted(CGROUP_MOUNT.iterdir()) if h.is_dir() and relative]


def _remove_cgroups(cgroup_root: str, until: float) -> list[str]:
    left: list[str] = []
    for top in _cgroup_dirs(cgroup_root):
        if not top.exists():
            continue
        for directory in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            _rmdir_when_empty(directory, until)
        _rmdir_when_empty(top, until)
        if top.exists():
            left.append(str(top))
    return left


def _rmdir_when_empty(directory: Path, until: float) -> None:
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > until:
                return
            time.sleep(0.1)  # a killed task leaves its cgroup a moment after it is reaped


# Network: the bridge (veths go with their namespaces), the nft tables, new iptables chains,
# and the CNI result cache of our network.


def _remove_network(record: NodeRecord) -> None:
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
    for family, name in nft_tables_present():
        subprocess.run(["nft", "delete", "table", family, name], capture_output=True, check=False)
    _remove_new_iptables_chains(record.chains)
    _remove_new_empty_tables(record.tables)
    for cache in (CNI_CACHE / "results", CNI_CACHE / "networks" / CNI_NETWORK):
        if cache.is_dir():
            for entry in cache.iterdir():
                if entry.name.startswith(f"{CNI_NETWORK}-") or cache.name == CNI_NETWORK:
                    entry.unlink(missing_ok=True)


def _nft_tables() -> set[tuple[str, str]]:
    if shutil.which("nft") is None:
        return set()
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    return {
        (w[1], w[2]) for w in (line.split() for line in listing.stdout.splitlines()) if len(w) > 2
    }


def nft_tables_present() -> list[tuple[str, str]]:
    present = _nft_tables()
    return [table for table in NFT_TABLES if table in present]


def _remove_new_empty_tables(before: list[str]) -> None:
    """iptables' own tables that appeared with the node and hold no rule any more."""
    for family, name in sorted(_nft_tables()):
        if family not in {"ip", "ip6"} or f"{family} {name}" in before:
            continue
        if name not in {"filter", "nat", "mangle", "raw", "security"}:
            continue
        listing = subprocess.run(
            ["nft", "list", "table", family, name], capture_output=True, text=True, check=False
        )
        rules = [line for line in listing.stdout.splitlines() if _is_rule(line)]
        if not rules:
            subprocess.run(
                ["nft", "delete", "table", family, name], capture_output=True, check=False
            )


def _is_rule(line: str) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith(("table ", "chain ", "type ", "}", "policy"))


def _iptables_save(command: str) -> str:
    if shutil.which(f"{command}-save") is None:
        return ""
    result = subprocess.run([f"{command}-save"], capture_output=True, text=True, check=False)
    return result.stdout


def _iptables_chains() -> dict[str, set[str]]:
    chains: dict[str, set[str]] = {}
    for command in IPTABLES:
        table = ""
        for line in _iptables_save(command).splitlines():
            if line.startswith("*"):
                table = line[1:]
                chains.setdefault(f"{command}/{table}", set())
            elif line.startswith(":"):
                chains[f"{command}/{table}"].add(line[1:].split()[0])
    return chains


def _remove_new_iptables_chains(before: dict[str, list[str]]) -> None:
    """Delete the KUBE-/CNI- chains that did not exist before, and the rules that jump to them."""
    for command in IPTABLES:
        script = _iptables_removal_script(command, before)
        if script:
            subprocess.run(
                [f"{command}-restore", "--noflush"],
                input=script,
                text=True,
                capture_output=True,
                check=False,
            )


def _iptables_removal_script(command: str, before: dict[str, list[str]]) -> str:
    lines: list[str] = []
    table = ""
    new: set[str] = set()
    deletes: list[str] = []
    for line in _iptables_save(command).splitlines():
        if line.startswith("*"):
            table, new, deletes = line[1:], set(), []
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            if chain.startswith(IPTABLES_PREFIXES) and chain not in before.get(
                f"{command}/{table}", []
            ):
                new.add(chain)
        elif line.startswith("-A "):
            parts = line.split()
            target = parts[parts.index("-j") + 1] if "-j" in parts else ""
            if parts[1] not in new and target in new:
                deletes.append("-D " + line[3:])
        elif line == "COMMIT" and (new or deletes):
            lines += [f"*{table}", *deletes]
            lines += [f"-F {chain}" for chain in sorted(new)]
            lines += [f"-X {chain}" for chain in sorted(new)]
            lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""


def _read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name).read_text().strip()
    except OSError:
        return None


def _restore_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        if _read_sysctl(name) != value:
            # A read-only sysctl here is one nothing could have changed either.
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / name).write_text(value)

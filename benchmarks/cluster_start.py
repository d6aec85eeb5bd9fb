"""Time the local control plane: start to node Ready, memory once up, and stop.

Each round starts a fresh cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
KWOK and its Ready fake node) in a new state directory, reads each component's resident memory,
then stops it (SIGTERM in reverse order). Binaries come from GITSTAGE_K8S_BIN or the cached build.

    PYTHONPATH=operator python benchmarks/cluster_start.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gitstage.dev.cluster import LocalCluster


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_round(state_dir: Path) -> tuple[float, float, dict[str, float]]:
    cluster = LocalCluster(state_dir, nodes="kwok")
    cluster.bin_dir  # noqa: B018 - locate (or build) the binaries outside the timing
    began = time.monotonic()
    try:
        info = cluster.start()
        started = time.monotonic() - began
        memory = {name: resident_mib(pid) for name, pid in info.pids.items()}
    finally:
        stopping = time.monotonic()
        cluster.stop()
    return started, time.monotonic() - stopping, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    starts, stops = [], []
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gitstage-cluster-bench-") as scratch:
        for number in range(1, rounds + 1):
            started, stopped, memory = one_round(Path(scratch) / f"round-{number}")
            starts.append(started)
            stops.append(stopped)
            print(f"round {number}: start to node Ready {started:.1f} s, stop {stopped:.1f} s")
    print(
        f"start to node Ready: median {statistics.median(starts):.1f} s "
        f"(min {min(starts):.1f}, max {max(starts):.1f}) over {rounds} rounds"
    )
    print(f"stop: median {statistics.median(stops):.1f} s")
    print("resident memory once up (last round):")
    for name, mib in memory.items():
        print(f"  {name:<24} {mib:6.0f} MiB")
    print(f"  {'total':<24} {sum(memory.values()):6.0f} MiB")


if __name__ == "__main__":
    main()

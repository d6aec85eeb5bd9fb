"""The real node leaves this machine as it found it: after stop(), after SIGTERM of the process
that owns the cluster, after SIGKILL of it, and after `gitstage dev cluster down`.

These tests start their own real nodes, and one real node runs per machine at a time: they are
ordered before every test that uses the session's cluster (see tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitstage.dev.cluster import ClusterError, LocalCluster
from gitstage.dev.node import NodeError, check_prerequisites
from gitstage.dev.processes import alive
from tests.e2e.kubeutil import eventually
from tests.support.machine import differences, machine_state, node_processes

pytestmark = [pytest.mark.e2e, pytest.mark.node_lifecycle]

OPERATOR = str(Path(__file__).resolve().parents[2] / "operator")


@pytest.fixture
def clean_machine() -> dict[str, list[str]]:
    """The machine's state before the test; the test asserts it comes back."""
    before = machine_state()
    assert not before["processes"], f"a node is already running here: {before['processes']}"
    return before


def machine_is_back(before: dict[str, list[str]]) -> bool:
    return not differences(before, machine_state())


def test_stop_removes_every_trace_of_the_node(
    tmp_path: Path, clean_machine: dict[str, list[str]]
) -> None:
    cluster = LocalCluster(tmp_path / "c")
    info = cluster.start()
    try:
        assert info.nodes == "real"
        during = differences(clean_machine, machine_state())
        # The node really ran: its programs, its bridge, kube-proxy's table, its cgroups.
        assert "processes" in during
        assert "gs0" in str(during["links"])
        assert "kube-proxy" in str(during["nft tables"])
        assert "cgroups" in during
    finally:
        cluster.stop()
    assert cluster.node_leftovers == []
    assert differences(clean_machine, machine_state()) == {}


OWNER = """
import json, signal, sys
from pathlib import Path
from gitstage.dev.cluster import LocalCluster
try:
    with LocalCluster(Path(sys.argv[1])) as cluster:
        print(json.dumps(list(cluster.info.pids.values())), flush=True)
        signal.pause()
except KeyboardInterrupt:
    sys.exit(3)
"""


@pytest.fixture
def owner(
    tmp_path: Path, clean_machine: dict[str, list[str]]
) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A process that starts a cluster with a real node and waits; the cluster's pids."""
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "owned")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": OPERATOR},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the owner could not start its cluster: see {tmp_path / 'owned' / 'logs'}"
        yield process, json.loads(line)
    finally:
        process.kill()
        process.wait()


def test_a_terminated_owner_removes_its_node(
    owner: tuple[subprocess.Popen[str], list[int]], clean_machine: dict[str, list[str]]
) -> None:
    process, pids = owner
    assert node_processes()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=180) == 3
    assert not any(alive(pid) for pid in pids)
    assert differences(clean_machine, machine_state()) == {}


def test_a_killed_owner_leaves_nothing_behind(
    owner: tuple[subprocess.Popen[str], list[int]], clean_machine: dict[str, list[str]]
) -> None:
    process, pids = owner
    assert node_processes()
    process.kill()  # no chance to clean up: the reaper, woken by the kernel, does it
    process.wait()
    eventually(lambda: machine_is_back(clean_machine), timeout=120, what="the node to be swept")
    assert not any(alive(pid) for pid in pids)


def test_dev_cluster_up_and_down_with_a_real_node(
    tmp_path: Path, clean_machine: dict[str, list[str]]
) -> None:
    state = tmp_path / "dev"
    env = {**os.environ, "PYTHONPATH": OPERATOR}
    command = [sys.executable, "-m", "gitstage", "dev", "cluster"]
    up = subprocess.run(
        [*command, "up", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    info = json.loads((state / "cluster.json").read_text())
    assert info["nodes"] == "real"
    assert {"containerd", "kubelet", "kube-proxy", "node-reaper"} <= set(info["pids"])
    assert node_processes()  # detached: the node outlives `up`
    down = subprocess.run(
        [*command, "down", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    assert differences(clean_machine, machine_state()) == {}


def test_a_node_that_cannot_start_names_its_component(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_machine: dict[str, list[str]]
) -> None:
    cluster = LocalCluster(tmp_path / "broken", timeout=60)
    monkeypatch.setattr(
        "gitstage.dev.node.containerd_config", lambda layout: "version = 2\n[grpc\n"
    )
    with pytest.raises(ClusterError, match=r"^containerd stopped \(exited \d+\)") as failed:
        cluster.start()
    assert "config.toml" in str(failed.value)  # the tail of containerd's own log
    assert differences(clean_machine, machine_state()) == {}


def test_missing_programs_are_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(NodeError) as missing:
        check_prerequisites()
    message = str(missing.value)
    assert "\n" not in message
    assert "containerd" in message
    assert "runc" in message

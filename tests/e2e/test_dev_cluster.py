"""`gitstage dev cluster up/status/down` and the harness's cleanup: nothing is left behind, whether
the cluster is stopped, fails to start, is interrupted, or loses the process that owns it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitstage.dev.cluster import ClusterError, LocalCluster
from gitstage.dev.processes import Terminated, alive
from tests.e2e.kubeutil import eventually

pytestmark = pytest.mark.e2e

OPERATOR = str(Path(__file__).resolve().parents[2] / "operator")


def gitstage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": OPERATOR}
    return subprocess.run(
        [sys.executable, "-m", "gitstage", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def can_listen(port: int) -> bool:
    """Whether a new server could listen on `port` (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def all_gone(pids: list[int], ports: list[int]) -> bool:
    return not any(alive(pid) for pid in pids) and all(can_listen(port) for port in ports)


def test_up_status_down_leaves_no_process_or_port(tmp_path: Path) -> None:
    state = tmp_path / "dev"
    up = gitstage("dev", "cluster", "up", "--nodes", "kwok", "--state-dir", str(state))
    assert up.returncode == 0, up.stderr
    kubeconfig = up.stdout.strip().removeprefix("export KUBECONFIG=")
    assert Path(kubeconfig).is_file()
    info = json.loads((state / "cluster.json").read_text())
    pids = list(info["pids"].values())
    ports = list(info["ports"].values())
    assert len(pids) == 5
    assert len(ports) == 3
    assert all(alive(pid) for pid in pids)  # detached: they outlive the `up` command
    assert not any(can_listen(port) for port in ports)
    again = gitstage("dev", "cluster", "up", "--nodes", "kwok", "--state-dir", str(state))
    assert again.returncode == 1
    assert "already up" in again.stderr
    status = gitstage("dev", "cluster", "status", "--state-dir", str(state))
    assert status.stdout.count("running") == 5
    down = gitstage("dev", "cluster", "down", "--state-dir", str(state))
    assert down.returncode == 0
    assert all_gone(pids, ports)
    assert not state.exists()


def test_stop_frees_every_pid_and_port(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "c", nodes="kwok")
    info = cluster.start()
    try:
        pids, ports = list(info.pids.values()), list(info.ports.values())
        assert sorted(info.pids) == sorted(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
        )
        assert all(alive(pid) for pid in pids)
        assert not any(can_listen(port) for port in ports)
    finally:
        cluster.stop()
    assert all_gone(pids, ports)


def test_a_failing_component_stops_everything_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = LocalCluster(tmp_path / "broken", timeout=20, nodes="kwok")
    started: list[int] = []
    original = cluster._apiserver_args

    def broken_args(*args: object, **kwargs: object) -> list[str]:
        started.extend(p.pid for p in cluster._processes.values())
        return [*original(*args, **kwargs), "--no-such-flag"]  # type: ignore[arg-type]

    monkeypatch.setattr(cluster, "_apiserver_args", broken_args)
    with pytest.raises(ClusterError, match="kube-apiserver"):
        cluster.start()
    assert started  # etcd was running when the apiserver was launched
    assert not any(alive(pid) for pid in started)


def test_a_component_that_dies_is_named_with_its_log_without_waiting_for_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = LocalCluster(tmp_path / "dies", timeout=120, nodes="kwok")
    original = cluster._spawn

    def spawn(name: str, bins: Path, args: list[str]) -> None:
        original(name, bins, [*args, "--no-such-flag"] if name == "etcd" else args)

    monkeypatch.setattr(cluster, "_spawn", spawn)
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"^etcd stopped \(exited \d+\)") as failed:
        cluster.start()
    assert "no-such-flag" in str(failed.value)  # the tail of etcd's own log
    assert time.monotonic() - started < 60


def test_sigterm_during_start_stops_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = LocalCluster(tmp_path / "term", nodes="kwok")
    started: list[int] = []

    def terminated(*args: object) -> None:
        started.extend(p.pid for p in cluster._processes.values())
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cluster, "_start_controllers", terminated)
    handler = signal.getsignal(signal.SIGTERM)  # the session's cluster may hold it already
    with pytest.raises(Terminated):
        cluster.start()
    assert len(started) == 2  # etcd and kube-apiserver were up
    assert not any(alive(pid) for pid in started)
    assert signal.getsignal(signal.SIGTERM) is handler  # ours is not left behind


OWNER = """
import json, signal, sys
from pathlib import Path
from gitstage.dev.cluster import LocalCluster
try:
    with LocalCluster(Path(sys.argv[1]), nodes="kwok") as cluster:
        info = cluster.info
        print(json.dumps([list(info.pids.values()), list(info.ports.values())]), flush=True)
        signal.pause()
except KeyboardInterrupt:
    sys.exit(3)
"""


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int], list[int]]]:
    """A process that starts an attached cluster and waits; its pids and ports."""
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "owned")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": OPERATOR},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the owner exits (EOF) if the start fails
        assert line, f"the owner could not start its cluster: see {tmp_path / 'owned' / 'logs'}"
        pids, ports = json.loads(line)
        yield process, pids, ports
    finally:
        process.kill()
        process.wait()


def test_a_terminated_owner_stops_its_cluster_before_exiting(
    owner: tuple[subprocess.Popen[str], list[int], list[int]],
) -> None:
    process, pids, ports = owner
    assert all(alive(pid) for pid in pids)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 3  # SIGTERM unwound like Ctrl-C, through stop()
    assert all_gone(pids, ports)


def test_a_killed_owner_takes_its_cluster_along(
    owner: tuple[subprocess.Popen[str], list[int], list[int]],
) -> None:
    process, pids, ports = owner
    assert all(alive(pid) for pid in pids)
    process.kill()  # no chance to clean up: the kernel's parent-death signal does it
    process.wait()
    eventually(lambda: all_gone(pids, ports), timeout=30, what="the owned cluster to be gone")

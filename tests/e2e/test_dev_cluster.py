"""`gitstage dev cluster up/status/down` and the harness's cleanup: nothing is left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gitstage.dev.cluster import ClusterError, LocalCluster

pytestmark = pytest.mark.e2e


def gitstage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "gitstage", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.is_file() and stat.read_text().split()[2] != "Z"


def test_up_status_down_leaves_no_process_or_port(tmp_path: Path) -> None:
    state = tmp_path / "dev"
    up = gitstage("dev", "cluster", "up", "--state-dir", str(state))
    assert up.returncode == 0, up.stderr
    kubeconfig = up.stdout.strip().removeprefix("export KUBECONFIG=")
    assert Path(kubeconfig).is_file()
    info = json.loads((state / "cluster.json").read_text())
    pids = list(info["pids"].values())
    port = urlsplit(info["api_url"]).port
    assert port is not None
    assert all(alive(pid) for pid in pids)
    again = gitstage("dev", "cluster", "up", "--state-dir", str(state))
    assert again.returncode == 1
    assert "already up" in again.stderr
    status = gitstage("dev", "cluster", "status", "--state-dir", str(state))
    assert status.stdout.count("running") == 5
    down = gitstage("dev", "cluster", "down", "--state-dir", str(state))
    assert down.returncode == 0
    assert not any(alive(pid) for pid in pids)
    assert port_is_free(port)
    assert not state.exists()


def test_a_failing_component_stops_everything_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = LocalCluster(tmp_path / "broken", timeout=20)
    started: list[int] = []
    original = cluster._apiserver_args

    def broken_args(*args: object) -> list[str]:
        started.extend(p.pid for p in cluster._processes.values())
        return [*original(*args), "--no-such-flag"]  # type: ignore[arg-type]

    monkeypatch.setattr(cluster, "_apiserver_args", broken_args)
    with pytest.raises(ClusterError, match="kube-apiserver"):
        cluster.start()
    assert started  # etcd was running when the apiserver was launched
    assert not any(alive(pid) for pid in started)


def test_an_interrupt_during_start_stops_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = LocalCluster(tmp_path / "int")
    started: list[int] = []

    def interrupted(*args: object) -> None:
        started.extend(p.pid for p in cluster._processes.values())
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster, "_start_controllers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cluster.start()
    assert len(started) == 2  # etcd and kube-apiserver were up
    assert not any(alive(pid) for pid in started)

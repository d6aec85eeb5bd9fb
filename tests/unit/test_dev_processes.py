"""Stopping the dev cluster's components: one shared deadline, every process reaped."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from gitstage.dev.processes import alive, spawn, stop_all
from tests.e2e.kubeutil import eventually

STUBBORN = ["sh", "-c", "trap '' TERM; echo ignoring; while :; do sleep 0.1; done"]
POLITE = ["sh", "-c", "exec sleep 600"]


def test_stop_all_shares_one_deadline_and_reaps_everything(tmp_path: Path) -> None:
    log = tmp_path / "log"
    processes = [spawn(argv, log, detached=False) for argv in (STUBBORN, POLITE, STUBBORN)]
    eventually(lambda: log.read_text().count("ignoring") == 2 or None, timeout=10, what="the traps")
    started = time.monotonic()
    stop_all(processes, grace=2)
    elapsed = time.monotonic() - started
    assert [p.returncode for p in processes] == [-signal.SIGKILL, -signal.SIGTERM, -signal.SIGKILL]
    assert not any(alive(p.pid) for p in processes)
    assert elapsed < 4  # one grace for all; one grace each would take 4 s or more


def test_stop_all_accepts_processes_that_exited_already(tmp_path: Path) -> None:
    done = subprocess.Popen(["true"], start_new_session=True)
    done.wait()
    running = spawn(POLITE, tmp_path / "log", detached=False)
    stop_all([done, running], grace=2)
    assert done.returncode == 0
    assert running.returncode == -signal.SIGTERM

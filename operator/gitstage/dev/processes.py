"""Child processes of the dev cluster: spawn them (tied to our life unless detached), stop them,
and tell whether a recorded pid is still one of ours.

An attached child gets PR_SET_PDEATHSIG=SIGKILL, so the kernel kills it when the process that
started it dies, even by SIGKILL: a killed test run leaves no etcd or apiserver holding ports.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C, so that every started process gets stopped."""


def spawn(argv: list[str], log: Path, *, detached: bool) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session (so stopping its group reaches its children too)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # Runs only prctl and getppid between fork and exec.
            preexec_fn=None if detached else _die_with(os.getpid()),  # noqa: PLW1509
        )


def _die_with(parent: int) -> Callable[[], None]:
    def arm() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


def stop_process(
    pid: int, process: subprocess.Popen[bytes] | None = None, grace: float = 10
) -> None:
    """SIGTERM the process group `pid`, SIGKILL it after `grace` seconds; reap our own child."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        if process is not None:
            process.wait(timeout=grace)
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not alive(pid):
            return
        time.sleep(0.1)  # polling interval while the process shuts down
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait(timeout=grace)


def stop_all(processes: list[subprocess.Popen[bytes]], grace: float = 10) -> None:
    """SIGTERM every process group at once and SIGKILL what remains after one shared `grace`.

    One deadline for all, not one each: five components that each ignore SIGTERM would
    otherwise hold a terminated owner for five graces.
    """
    for process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.poll() is None for p in processes):
        time.sleep(0.1)  # polling interval while the processes shut down
    for process in processes:
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait(timeout=grace)


def _signal_group(pid: int, signal_number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already; the caller reaps its leader
        os.killpg(pid, signal_number)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state follows the parenthesised command name, which may itself contain spaces.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def runs_from(pid: int, bin_dir: Path) -> bool:
    """Whether `pid` runs a binary of `bin_dir`: a recorded pid may have been reused since."""
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return False
    return exe.parent == bin_dir.resolve()


def names_path(pid: int, path: Path) -> bool:
    """Whether `pid`'s command line mentions `path` (a process started for that directory)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(path.resolve()).encode() in argv


def raise_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise `Terminated` in the main thread; returns the function that undoes it.

    Leaves the signal alone off the main thread or when someone else already handles it.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)

    return restore

"""The git CLI as a child process that cannot outlive its time, nor leave a helper behind.

git starts helpers (git-remote-https, ssh, index-pack) in its process group; git runs in a
group of its own, and on timeout the whole group is killed, so no helper keeps a connection to
a server open. A stalled HTTP transfer (fewer than one byte a second for the stall timeout) is
ended by git itself (curl's low-speed limit).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


class GitMissingError(RuntimeError):
    """git is not installed."""


def failure_reason(stderr: str) -> str:
    """Why git failed, in one line: its first `fatal:` (else `error:`) line, which names the
    cause; the lines after it are advice ("Please make sure you have the correct access rights
    and the repository exists.")."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for prefix in ("fatal: ", "error: "):
        found = next((line for line in lines if line.startswith(prefix)), None)
        if found is not None:
            return found.removeprefix(prefix)[:300]
    return lines[-1][:300] if lines else "no output"


def run_git(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`git ARGS`, its output as text; subprocess.TimeoutExpired once the group is killed."""
    git = shutil.which("git")
    if git is None:
        raise GitMissingError("git is not installed")
    process = subprocess.Popen(
        [git, *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, killed as one on timeout
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def stall_environment(stall_seconds: float) -> dict[str, str]:
    """git's HTTP transports give up below 1 byte/s over `stall_seconds` (whole seconds)."""
    return {
        "GIT_HTTP_LOW_SPEED_LIMIT": "1",
        "GIT_HTTP_LOW_SPEED_TIME": str(max(1, math.ceil(stall_seconds))),
    }

"""Run the git CLI against a remote: credentials only in the environment, a hard timeout per call.

git starts helpers (git-remote-http) in the same process group; on timeout the whole group is
killed so no helper keeps a connection open.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gitstage.adapters.git.credentials import GitCredentials, git_environment
from gitstage.adapters.mirror.errors import (
    GitOperationFailed,
    OperationTimedOut,
    classify,
)


@dataclass(frozen=True)
class GitCall:
    """One git invocation: `operation` names it in errors (`ls-remote`, `fetch`)."""

    operation: str
    args: Sequence[str]
    timeout: float
    stdin: str | None = None


class GitRunner:
    """Runs git in `cwd` with `credentials`; errors are typed and carry no secret."""

    def __init__(
        self,
        cwd: Path,
        credentials: GitCredentials | None,
        shown_url: str,
        scratch: Path,
        *,
        url: str,
    ) -> None:
        git = shutil.which("git")
        if git is None:
            raise GitOperationFailed("git is not installed")
        self._git = git
        self._cwd = cwd
        self._credentials = credentials
        self._shown_url = shown_url
        self._scratch = scratch
        self._url = url  # the credentials' origin

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._credentials.secrets if self._credentials is not None else ()

    def run(self, call: GitCall) -> str:
        self._scratch.mkdir(parents=True, exist_ok=True)
        env = git_environment(os.environ, self._credentials, self._scratch, url=self._url)
        process = subprocess.Popen(
            [self._git, *call.args],
            cwd=self._cwd,
            env=env,
            stdin=subprocess.PIPE if call.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, killed as one on timeout
        )
        try:
            stdout, stderr = process.communicate(call.stdin, timeout=call.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise OperationTimedOut(
                f"{call.operation} {self._shown_url}: timed out after {call.timeout:g}s"
            ) from None
        if process.returncode != 0:
            raise classify(call.operation, stderr, self._shown_url, self.secrets)
        return stdout


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()

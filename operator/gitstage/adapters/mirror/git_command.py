"""Run the git CLI against a remote: credentials only in the environment, a hard timeout per call
(git_process.py: on timeout git's whole process group is killed, helpers included).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitstage.adapters.git.credentials import GitCredentials, git_environment
from gitstage.adapters.git.git_process import run_git
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
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the credentials' own


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
        if shutil.which("git") is None:
            raise GitOperationFailed("git is not installed")
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
        env = {**env, **call.env}
        try:
            result = run_git(
                call.args, env=env, timeout=call.timeout, cwd=self._cwd, stdin=call.stdin
            )
        except subprocess.TimeoutExpired:
            raise OperationTimedOut(
                f"{call.operation} {self._shown_url}: timed out after {call.timeout:g}s"
            ) from None
        if result.returncode != 0:
            raise classify(call.operation, result.stderr, self._shown_url, self.secrets)
        return result.stdout

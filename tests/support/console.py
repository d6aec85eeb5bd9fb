"""`python -m gitstage ARGS` as a user runs it: its own process (the `show --json` fast path,
then click), so a test sees the real exit code and everything printed, a traceback included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def run_gitstage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`env`: variables set on top of this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "gitstage", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(OPERATOR), **(env or {})},
        check=False,
    )

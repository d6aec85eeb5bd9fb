"""Running `gto show` (the oracle) and `gitstage show` on a repository, the same way.

gto runs in-process through its own click app, so its output is byte for byte what the
`gto show` command prints. Building gto's registry state dominates its run time (about 0.3-0.8 s
a call on a 60-tag history), so `memoized_gto_state` builds it once per repository and hands
every view a fresh copy of it; `test_memoized_oracle_is_faithful` (test_differential.py) checks
that this changes nothing. gitstage runs as the console command does
(`python -m gitstage` in a subprocess) or, for the bulk of the flag combinations, through the
same click group in-process (its import alone takes about a second).
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator"
VENV_BIN = Path(sys.executable).parent
# The gto command and gitstage must not see the caller's GTO_* settings.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("GTO_")}


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


Show = Callable[[Path, list[str]], Outcome]


def show_json(show: Show, repo: Path, *args: str) -> Any:
    """The parsed `show --json` document; the command must succeed."""
    outcome = show(repo, ["--json", *args])
    assert outcome.exit_code == 0, outcome
    return json.loads(outcome.stdout)


def listed_versions(show: Show, repo: Path, *args: str) -> list[str]:
    """The versions `show --json NAME[#STAGE|@latest]` lists, in its order."""
    return [row["version"] for row in show_json(show, repo, *args)]


def gto_command(repo: Path, args: list[str]) -> str:
    """The shell command that reproduces an oracle run."""
    return shlex.join([str(VENV_BIN / "gto"), "show", *args, "-r", str(repo)])


def gitstage_command(repo: Path, args: list[str]) -> str:
    return f"PYTHONPATH={OPERATOR} " + shlex.join(
        [sys.executable, "-m", "gitstage", "show", *args, "-r", str(repo)]
    )


def run_gto(repo: Path, args: list[str]) -> Outcome:
    """`gto show ARGS -r REPO`, in-process."""
    from gto.cli import app

    result = CliRunner(env=_gto_env_reset()).invoke(app, ["show", *args, "-r", str(repo)])
    return Outcome(result.exit_code, result.stdout, result.stderr)


def _gto_env_reset() -> dict[str, str | None]:
    return {k: None for k in os.environ if k.startswith("GTO_")}


@contextmanager
def memoized_gto_state() -> Iterator[None]:
    """Within the block, gto builds each repository's registry state once."""
    from gto.registry import GitRegistry

    original: Callable[..., Any] = GitRegistry.get_state
    states: dict[tuple[str, bool, bool], bytes] = {}

    def get_state(self: Any, all_branches: bool = False, all_commits: bool = False) -> Any:
        key = (os.path.realpath(self.scm.root_dir), all_branches, all_commits)
        if key not in states:
            state = original(self, all_branches=all_branches, all_commits=all_commits)
            states[key] = pickle.dumps(state)
        # A fresh copy per call (a pickle round trip is 4x cheaper than deepcopy): no view can
        # see what another one did to its state.
        return pickle.loads(states[key])  # noqa: S301 - our own bytes

    GitRegistry.get_state = get_state  # type: ignore[method-assign]
    try:
        yield
    finally:
        GitRegistry.get_state = original  # type: ignore[method-assign]


def run_gitstage(repo: Path, args: list[str]) -> Outcome:
    """`python -m gitstage show ARGS -r REPO` in a subprocess, exactly as a user runs it."""
    env = CLEAN_ENV | {"PYTHONPATH": str(OPERATOR)}
    proc = subprocess.run(
        [sys.executable, "-m", "gitstage", "show", *args, "-r", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def run_gitstage_inprocess(repo: Path, args: list[str]) -> Outcome:
    """The same command through gitstage's click group in this process."""
    from gitstage.cli.main import cli

    result = CliRunner(env=_gto_env_reset()).invoke(cli, ["show", *args, "-r", str(repo)])
    return Outcome(result.exit_code, result.stdout, result.stderr)


@cache
def gitstage_unavailable() -> str | None:
    """Why `gitstage show` cannot be run here, or None if it can."""
    env = CLEAN_ENV | {"PYTHONPATH": str(OPERATOR)}
    proc = subprocess.run(
        [sys.executable, "-m", "gitstage", "show", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`python -m gitstage show --help` fails ({last}): the CLI has not landed yet"
    return None

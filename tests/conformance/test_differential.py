"""Differential test: `gitstage show --json` prints what `gto show --json` (1.10.1) prints.

For each seed, a random history (tests/conformance/history.py) is written as a git repository,
and every view (the registry; `show NAME` per artifact, plus NAME@latest and one NAME@vX.Y.Z;
`NAME#STAGE` per used stage; an unknown artifact and an unknown stage) is shown by both tools
under combinations of --sort {timestamp,semver} x --vs {1,-1,2} x --av {-1,1} x --ro x -d.
gto accepts every combination in every mode (cli.py passes them all to gto.api.show), so none
is pruned. The registry view gets all 48; the other views the default flags plus a seeded sample
(3 for @latest, @vX.Y.Z, unknown names and unknown stages).

Knobs: GITSTAGE_ORACLE_SEEDS (default 8), GITSTAGE_ORACLE_SEED_START (default 0),
GITSTAGE_ORACLE_COMBOS (flag combinations per artifact or stage view, default 10, or "all").
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random

import pytest

from tests.conformance.history import Crash, History, random_history, write
from tests.conformance.runners import (
    CLEAN_ENV,
    OPERATOR,
    Outcome,
    gitstage_command,
    gitstage_unavailable,
    gto_command,
    memoized_gto_state,
    run_gitstage,
    run_gitstage_inprocess,
    run_gto,
)

pytestmark = pytest.mark.oracle

SEEDS = int(os.environ.get("GITSTAGE_ORACLE_SEEDS", "8"))
SEED_START = int(os.environ.get("GITSTAGE_ORACLE_SEED_START", "0"))
COMBOS = os.environ.get("GITSTAGE_ORACLE_COMBOS", "10")
MAX_REPORTED = 5


@dataclass(frozen=True)
class Flags:
    sort: str = "timestamp"
    vs: int = 1
    av: int = -1
    ro: bool = False
    deprecated: bool = False

    def args(self) -> list[str]:
        args = ["--sort", self.sort, "--vs", str(self.vs), "--av", str(self.av)]
        return args + ["--ro"] * self.ro + ["-d"] * self.deprecated


ALL_FLAGS = [
    Flags(*combo)
    for combo in itertools.product(
        ("timestamp", "semver"), (1, -1, 2), (-1, 1), (False, True), (False, True)
    )
]
DEFAULT = Flags()


def views(history: History) -> Iterator[tuple[list[str], int]]:
    """(view arguments, how many flag combinations: 0 means all of them)."""
    combos = 0 if COMBOS == "all" else int(COMBOS)
    narrow = 0 if COMBOS == "all" else 3  # views whose answer depends on few flags
    yield [], 0
    for name in history.artifacts:
        yield [name], combos
        yield [f"{name}@latest"], narrow
    for name, versions in sorted(history.versions.items()):
        yield [f"{name}@{versions[history.seed % len(versions)]}"], narrow
    yield ["nope"], narrow
    for name, stages in sorted(history.stages.items()):
        for stage in stages:
            yield [f"{name}#{stage}"], combos
        yield [f"{name}#nostage"], narrow


def flag_sets(rng: Random, count: int) -> list[Flags]:
    if count == 0:
        return ALL_FLAGS
    others = [f for f in ALL_FLAGS if f != DEFAULT]
    return [DEFAULT, *rng.sample(others, min(count - 1, len(others)))]


def cases(history: History) -> Iterator[list[str]]:
    rng = Random(history.seed)
    for view, count in views(history):
        for flags in flag_sets(rng, count):
            yield ["--json", *view, *flags.args()]


def compare(expected: Outcome, actual: Outcome) -> str | None:
    """Why `actual` (gitstage) does not print what `expected` (gto) prints, or None."""
    if expected.exit_code != 0:
        if "Unexpected error" in expected.stderr or "Multiple versions" in expected.stderr:
            return f"the generator wrote a history gto crashes on: {expected.stderr.strip()}"
        if actual.exit_code == 0 or actual.stdout:
            return f"gto failed ({expected.stderr.strip()}) but gitstage printed:\n{actual.stdout}"
        return one_line_error_problem(actual)
    if actual.exit_code != 0:
        return f"gitstage failed (exit {actual.exit_code}): {actual.stderr.strip()}"
    if expected.stdout == actual.stdout:
        return None
    diff = "\n".join(
        difflib.unified_diff(
            expected.stdout.splitlines(),
            actual.stdout.splitlines(),
            "gto",
            "gitstage",
            lineterm="",
            n=4,
        )
    )
    same_value = json.loads(expected.stdout) == json.loads(actual.stdout)
    note = "same JSON value, different text (key order or escaping)\n" if same_value else ""
    return note + diff


def one_line_error_problem(outcome: Outcome) -> str | None:
    lines = outcome.stderr.strip().splitlines()
    if len(lines) != 1 or "Traceback" in outcome.stderr:
        return f"not a one-line error (exit {outcome.exit_code}):\n{outcome.stderr}"
    return None


def report(history: History, repo: Path, args: list[str], problem: str) -> str:
    again = Path(f"/tmp/gs-oracle-{history.seed}")
    return "\n".join(
        [
            f"--- seed {history.seed}: show {' '.join(args)}   (repository: {repo})",
            f"repro: {history.regenerate_command(again)}",
            f"       {gto_command(again, args)}",
            f"       {gitstage_command(again, args)}",
            problem if len(problem) < 6000 else problem[:6000] + "\n[...]",
        ]
    )


@pytest.fixture(autouse=True)
def _gitstage_cli() -> None:
    reason = gitstage_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("seed", range(SEED_START, SEED_START + SEEDS))
def test_gitstage_show_json_equals_gto(seed: int, tmp_path: Path) -> None:
    history = random_history(seed)
    repo = write(history, tmp_path / f"seed-{seed}").path
    problems: list[str] = []
    count = 0
    with memoized_gto_state():
        for args in cases(history):
            count += 1
            problem = compare(run_gto(repo, args), run_gitstage_inprocess(repo, args))
            if problem:
                problems.append(report(history, repo, args, problem))
        # Once per seed, the real entry point: `python -m gitstage` in a subprocess.
        entry = ["--json", *Flags(sort="semver", vs=-1).args()]
        problem = compare(run_gto(repo, entry), run_gitstage(repo, entry))
        if problem:
            problems.append(report(history, repo, entry, problem))
    summary = f"{len(problems)} of {count + 1} views differ from gto (first {MAX_REPORTED}):"
    assert not problems, "\n\n".join([summary, *problems[:MAX_REPORTED]])


def test_memoized_oracle_is_faithful(tmp_path: Path) -> None:
    """The memoized gto prints what a fresh gto prints, whatever views ran before."""
    history = random_history(SEED_START)
    repo = write(history, tmp_path / "repo").path
    sample = list(cases(history))[::60]
    fresh = [run_gto(repo, args) for args in sample]
    with memoized_gto_state():
        for args in reversed(list(cases(history))[:40]):
            run_gto(repo, args)  # warm the memo with other views first
        memoized = [run_gto(repo, args) for args in sample]
    assert memoized == fresh


# gto fails on a tag whose tagger has no email; gitstage reads it (a README divergence): one tag
# written by a misconfigured client must not make a whole registry unreadable.
CRASHES = [c for c in Crash if c is not Crash.TAGGER_WITHOUT_EMAIL]


@pytest.mark.parametrize("crash", CRASHES)
@pytest.mark.parametrize("seed", [SEED_START, SEED_START + 1])
def test_gto_crash_histories_give_a_one_line_error(seed: int, crash: Crash, tmp_path: Path) -> None:
    """Histories gto cannot read: gitstage fails too, in one line naming the offending tags."""
    history = random_history(seed, crash)
    repo = write(history, tmp_path / "repo").path
    artifact = history.offending[0].split("@")[0].replace("=", ":")
    for view in (["--json"], ["--json", artifact]):
        oracle = run_gto(repo, view)
        assert oracle.exit_code != 0, f"gto read a {crash} history: {oracle.stdout[:300]}"
        outcome = run_gitstage(repo, view)
        where = f"{gitstage_command(repo, view)}\n{history.regenerate_command(repo)}"
        assert outcome.exit_code != 0, f"gitstage read a {crash} history: {where}"
        assert outcome.stdout == "", where
        assert one_line_error_problem(outcome) is None, where
        for tag in history.offending:
            assert tag in outcome.stderr, f"{tag} not named in {outcome.stderr!r}: {where}"


@pytest.mark.parametrize("seed", [SEED_START, SEED_START + 1])
def test_a_tagger_without_email_is_read_where_gto_fails(seed: int, tmp_path: Path) -> None:
    history = random_history(seed, Crash.TAGGER_WITHOUT_EMAIL)
    repo = write(history, tmp_path / "repo").path
    assert run_gto(repo, ["--json"]).exit_code != 0, "gto read a tagger without email"
    shown = run_gitstage(repo, ["--json"])
    assert shown.exit_code == 0, shown.stderr
    assert isinstance(json.loads(shown.stdout), dict)
    env = CLEAN_ENV | {"PYTHONPATH": str(OPERATOR)}
    listed = subprocess.run(
        [sys.executable, "-m", "gitstage", "history", "--json", "-r", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    [event] = [e for e in json.loads(listed.stdout) if e["ref"] == history.offending[0]]
    assert (event["event"], event["author_email"]) == ("deprecation", "")

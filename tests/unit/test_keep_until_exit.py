"""The console script's fast path keeps the objects of the document it computed instead of
freeing them (reading.keep_until_exit): the same document, the state out of the collector's
reach, and a process that still exits as usual; other callers free everything as before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gitstage import reading
from gitstage.reading import ShowRequest, show_json_text
from tests.conformance.history import random_history, write
from tests.support.console import OPERATOR, run_gitstage

PROBE = """
import atexit, gc, sys
from gitstage import reading
from gitstage.cli.show_json import fast_main
atexit.register(lambda: print("exit handlers run", file=sys.stderr))
assert fast_main(["show", "--json", "-r", sys.argv[1]]) == 0
kept = reading._kept
assert kept is not None and kept[0] is kept and len(kept) == 2, kept
assert gc.get_freeze_count() > 0
"""


def test_the_fast_path_keeps_its_read_and_prints_the_same_document(tmp_path: Path) -> None:
    path = write(random_history(2), tmp_path / "registry").path
    shown = run_gitstage("show", "--json", "-r", str(path), env={"GITSTAGE_CACHE": "off"})
    assert shown.returncode == 0, shown.stderr
    expected = shown.stdout
    env = {**os.environ, "PYTHONPATH": str(OPERATOR), "GITSTAGE_CACHE": "off"}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        env={**env, "GITSTAGE_CACHE": "on"},
        check=True,
    )
    assert probe.stdout == expected
    assert probe.stderr == "exit handlers run\n"


def test_a_full_read_is_kept_too(tmp_path: Path) -> None:
    """`show NAME --json`, or the whole registry with the row cache off, reads in full."""
    path = write(random_history(2), tmp_path / "registry").path
    env = {**os.environ, "PYTHONPATH": str(OPERATOR), "GITSTAGE_RESULT_CACHE": "off"}
    probe = [sys.executable, "-c", PROBE, str(path)]
    done = subprocess.run(probe, capture_output=True, text=True, env=env, check=True)
    assert done.stdout.startswith("{")


def test_other_callers_keep_nothing(tmp_path: Path) -> None:
    path = write(random_history(1), tmp_path / "registry").path
    show_json_text(ShowRequest(repo=str(path)))
    assert reading._kept is None

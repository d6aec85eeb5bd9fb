"""artifacts.yaml is validated on read exactly as gto 1.10.1 validates it, and the API's stage
lookup follows `gto show NAME#STAGE` for a deprecated artifact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gitstage import api
from tests.client.conftest import GTO
from tests.support.scratch import ScratchRepo, When

INDEXES = {
    "emoji label": "m:\n  path: m.pkl\n  labels: [Pickle🥒]\n",
    "label with a space": "m:\n  labels: [Major version]\n",
    "type with a space": "m:\n  type: my model\n  description: 'any text: at all'\n",
    "invalid artifact name": "m-:\n  path: m.pkl\n",
    "labels not a list": "m:\n  labels: 5\n",
    "not a mapping": "- m\n",
}


def _show(tool: list[str], repo: Path) -> tuple[int, str]:
    done = subprocess.run(
        [*tool, "show", "--json"], cwd=repo, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout


@pytest.mark.oracle
@pytest.mark.parametrize("index", INDEXES.values(), ids=INDEXES.keys())
def test_artifacts_yaml_is_accepted_and_refused_as_gto_does(tmp_path: Path, index: str) -> None:
    repo = ScratchRepo(tmp_path / "registry")
    commit = repo.commit({"artifacts.yaml": index, "m.pkl": "x"}, When(0))
    repo.tag("m@v1.0.0", commit, When(1))
    ours = _show([sys.executable, "-m", "gitstage"], repo.path)
    theirs = _show([GTO], repo.path)
    assert ours[0] == (0 if theirs[0] == 0 else 1)
    if theirs[0] == 0:  # a refusal: gto logs to stdout, gitstage says one line on stderr
        assert ours[1] == theirs[1]


def test_find_version_in_stage_on_a_deprecated_artifact_is_none(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path / "registry")
    commit = repo.commit({"m.txt": "x"}, When(0))
    repo.tag("m@v1.0.0", commit, When(1))
    repo.tag("m#prod#1", commit, When(2))
    assert api.find_version_in_stage(repo.path, "m", "prod") is not None
    repo.tag("m@deprecated", commit, When(3))
    assert api.show(repo.path, "m#prod") == []  # as `gto show m#prod --json`
    assert api.find_version_in_stage(repo.path, "m", "prod") is None

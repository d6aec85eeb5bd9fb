"""`gitstage.api.fetch`: load the model currently in a stage from any Python script."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitstage import api
from tests.support.scratch import ScratchRepo, When


def test_fetches_the_stage_holder_and_rolls_back_with_the_registry(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path / "registry")
    index = "churn:\n  path: models/churn.txt\n  type: model\n"
    c1 = repo.commit({"artifacts.yaml": index, "models/churn.txt": "weights v1"}, When(0))
    c2 = repo.commit({"models/churn.txt": "weights v2"}, When(1))
    repo.tag("churn@v1.0.0", c1, When(2))
    repo.tag("churn@v2.0.0", c2, When(3))
    repo.tag("churn#prod#1", c1, When(4))
    repo.tag("churn#prod#2", c2, When(5))

    prod = api.fetch("churn", repo=repo.path, stage="prod", dest=tmp_path / "out-prod")
    assert prod.read_text() == "weights v2"
    pinned = api.fetch("churn", repo=repo.path, version="v1.0.0", dest=tmp_path / "out-v1")
    assert pinned.read_text() == "weights v1"

    repo.tag("churn#prod!#3", c2, When(6))
    rolled_back = api.fetch("churn", repo=repo.path, stage="prod", dest=tmp_path / "out-back")
    assert rolled_back.read_text() == "weights v1"


def test_refuses_ambiguous_or_unknown_requests(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path / "registry")
    c1 = repo.commit({"m.txt": "x"}, When(0))
    repo.tag("m@v1.0.0", c1, When(1))
    with pytest.raises(ValueError, match="give one of stage, version or rev"):
        api.fetch("m", repo=repo.path, stage="prod", version="v1.0.0")
    with pytest.raises(LookupError, match="Cannot find artifact 'nope'"):
        api.fetch("nope", repo=repo.path)
    with pytest.raises(LookupError, match="no version of 'm' is in stage 'prod'"):
        api.fetch("m", repo=repo.path, stage="prod")
    with pytest.raises(LookupError, match=r"v9\.0\.0"):
        api.fetch("m", repo=repo.path, version="v9.0.0")


def test_latest_by_default_and_a_path_for_a_version_annotated_later(tmp_path: Path) -> None:
    """Registered before artifacts.yaml named it: the entry at HEAD gives the path."""
    repo = ScratchRepo(tmp_path / "registry")
    c1 = repo.commit({"models/m.txt": "one"}, When(0))
    c2 = repo.commit({"models/m.txt": "two"}, When(1))
    repo.commit({"artifacts.yaml": "m:\n  path: models/m.txt\n"}, When(2))
    repo.tag("m@v1.0.0", c1, When(3))
    repo.tag("m@v1.1.0", c2, When(4))
    assert api.fetch("m", repo=repo.path, dest=tmp_path / "latest").read_text() == "two"
    older = api.fetch("m", repo=repo.path, version="v1.0.0", dest=tmp_path / "v1")
    assert older.read_text() == "one"
    at_rev = api.fetch("m", repo=repo.path, rev=c1, path="models/m.txt", dest=tmp_path / "rev")
    assert at_rev.read_text() == "one"

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
    with pytest.raises(ValueError, match="exactly one"):
        api.fetch("m", repo=repo.path)
    with pytest.raises(LookupError, match="no version of 'm' is in stage 'prod'"):
        api.fetch("m", repo=repo.path, stage="prod")
    with pytest.raises(LookupError, match=r"v9\.0\.0"):
        api.fetch("m", repo=repo.path, version="v9.0.0")

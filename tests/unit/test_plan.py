"""Binding decisions over real registries: follow the stage, hold on deprecation or empty stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitstage.adapters.git.reader import read_registry
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.plan import Hold, HoldReason, decide
from gitstage.workloads.render import Serving
from tests.support.scratch import ScratchRepo, When

TEMPLATE = {"spec": {"containers": [{"name": "s", "image": "i"}]}}


def binding(**fields: object) -> v1.DeploymentBinding:
    return v1.DeploymentBinding.model_validate(
        {"name": "m", "artifact": "m", "template": TEMPLATE, **fields}
    )


@pytest.fixture
def repo(tmp_path: Path) -> tuple[ScratchRepo, str, str]:
    scratch = ScratchRepo(tmp_path / "r")
    c1 = scratch.commit({"a": "1"}, When(0))
    c2 = scratch.commit({"a": "2"}, When(0))
    scratch.tag("m@v1.0.0", c1, When(1))
    scratch.tag("m@v2.0.0", c2, When(2))
    scratch.tag("m#prod#1", c1, When(3))
    scratch.tag("m#prod#2", c2, When(4))
    return scratch, c1, c2


def decide_now(scratch: ScratchRepo, **fields: object) -> Serving | Hold:
    return decide(read_registry(scratch.path).state, binding(**fields), v1.Resolution())


def test_follows_the_latest_assignment_and_rolls_back_on_unassign(
    repo: tuple[ScratchRepo, str, str],
) -> None:
    scratch, c1, c2 = repo
    target = decide_now(scratch, stage="prod")
    assert isinstance(target, Serving)
    assert (target.version, target.commit, target.tag) == ("v2.0.0", c2, "m#prod#2")
    scratch.tag("m#prod!#3", c2, When(5))
    back = decide_now(scratch, stage="prod")
    assert isinstance(back, Serving)
    assert (back.version, back.commit) == ("v1.0.0", c1)


def test_holds_on_empty_stage_deprecation_and_unknown_names(
    repo: tuple[ScratchRepo, str, str],
) -> None:
    scratch, c1, _ = repo
    assert decide_now(scratch, stage="staging") == Hold(
        HoldReason.EMPTY_STAGE, "no version of 'm' is in stage 'staging'"
    )
    assert isinstance(decide_now(scratch, version="v9.9.9"), Hold)
    unknown = decide_now(scratch, stage="prod", artifact="other")
    assert isinstance(unknown, Hold)
    assert unknown.reason is HoldReason.UNKNOWN_ARTIFACT
    scratch.tag("m@deprecated", c1, When(9))
    deprecated = decide_now(scratch, stage="prod")
    assert isinstance(deprecated, Hold)
    assert deprecated.reason is HoldReason.DEPRECATED


def test_pinned_version(repo: tuple[ScratchRepo, str, str]) -> None:
    scratch, c1, _ = repo
    pinned = decide_now(scratch, version="v1.0.0")
    assert isinstance(pinned, Serving)
    assert (pinned.commit, pinned.stage, pinned.tag) == (c1, None, "m@v1.0.0")

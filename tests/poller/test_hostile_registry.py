"""A pushed registry the operator cannot read completely becomes a RegistryUnreadable poll error
(the worker's condition) carrying the last good snapshot, never a silent older or partial answer;
a repair brings the registry back."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror.poll_types import PollError, Source
from gitstage.adapters.mirror.poller import PollerHub
from tests.poller.conftest import BASE, Clone, Remote
from tests.poller.test_hub import HOUR, Collector, prod, run


def stage_tag_dated_past_9999(clone: Clone) -> str:
    """churn#prod#2 on v2's commit, its tagger line in the year 3 million (`git tag` refuses)."""
    head = clone.git("rev-parse", "HEAD")
    text = f"object {head}\ntype commit\ntag churn#prod#2\ntagger a <a@e> 99999999999999 +0000\n\n"
    oid = subprocess.run(
        ["git", "-C", str(clone.work), "hash-object", "-t", "tag", "-w", "--stdin", "--literally"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    clone.git("update-ref", "refs/tags/churn#prod#2", oid)
    clone.push("refs/tags/churn#prod#2")
    return "has a date out of range"


def deeply_nested_index(clone: Clone) -> str:
    deep = "deep: " + "[" * 5000 + "]" * 5000 + "\n"
    clone.commit("deep", {"artifacts.yaml": "churn:\n  type: model\n" + deep}, BASE + 40)
    clone.push("main")
    return "nests deeper than 100 levels"


def oversized_index(clone: Clone) -> str:
    padding = ("# " + "x" * 1000 + "\n") * 3000
    clone.commit("big", {"artifacts.yaml": "churn:\n  type: model\n" + padding}, BASE + 40)
    clone.push("main")
    return "bytes, over the limit of 2097152"


def non_utf8_config(clone: Clone) -> str:
    (clone.work / ".gto").write_bytes(b"stages: [dev, prod]\n# \xff\n")
    clone.git("add", ".gto")
    clone.git("commit", "-qm", "gto", date=BASE + 40)
    clone.push("main")
    return "not UTF-8 text"


@pytest.mark.fault
@pytest.mark.parametrize(
    "damage", [stage_tag_dated_past_9999, deeply_nested_index, oversized_index, non_utf8_config]
)
def test_an_unreadable_registry_is_an_error_with_the_last_good_snapshot(
    remote: Remote,
    credentials: GitCredentials,
    tmp_path: Path,
    damage: Callable[[Clone], str],
) -> None:
    async def scenario(hub: PollerHub) -> None:
        collector = Collector()
        hub.subscribe("ns/a", Source(remote.url), credentials, HOUR, collector)
        good = await collector.snapshot()
        assert prod(good) == ["v1.0.0"]
        fragment = damage(remote.clone)
        hub.request("ns/a")
        error = await collector.error()
        assert isinstance(error, PollError)
        assert error.reason == "RegistryUnreadable"
        assert fragment in error.message
        assert "\n" not in error.message
        assert error.last_good is good

    run(scenario, tmp_path / "cache")

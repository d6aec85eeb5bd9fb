"""The random histories of the default seeds cover every shape issue 2 lists, and write fast.

Without this, a generator change could quietly stop producing, say, re-registrations, and the
differential test would keep passing while testing less.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conformance.history import (
    YAML_ONLY,
    Crash,
    History,
    TagPlan,
    random_history,
    write,
)
from tests.conformance.test_differential import SEED_START, SEEDS

GTO_TAG = re.compile(
    r"^(?P<artifact>[^@#]+)(?:#(?P<stage>[^#!]+)|@(?P<version>v[^#!]+)|@(?P<dep>deprecated))"
    r"(?P<cancel>!?)(?:#(?P<counter>\d+))?$"
)


def annotated(history: History) -> list[TagPlan]:
    return [t for t in history.tags if t.when is not None and GTO_TAG.match(t.name)]


def parts(tag: TagPlan) -> dict[str, str]:
    match = GTO_TAG.match(tag.name)
    assert match
    return {k: v for k, v in match.groupdict().items() if v}


def same_second_tie(h: History) -> bool:
    seen: set[tuple[str, int]] = set()
    for tag in annotated(h):
        assert tag.when
        key = (parts(tag)["artifact"], tag.when.epoch)
        if key in seen:
            return True
        seen.add(key)
    return False


def zones(h: History) -> bool:
    return len({t.when.tz for t in h.tags if t.when}) >= 3


def has(predicate: Callable[[dict[str, str]], bool]) -> Callable[[History], bool]:
    return lambda h: any(predicate(parts(t)) for t in annotated(h))


def reregistration(h: History) -> bool:
    deregistered: set[tuple[str, str]] = set()
    for tag in annotated(h):
        p = parts(tag)
        key = (p["artifact"], p.get("version", ""))
        if "version" in p and p.get("cancel"):
            deregistered.add(key)
        elif "version" in p and key in deregistered:
            return True
    return False


def stage_on_unregistered_commit(h: History) -> bool:
    registered = {(parts(t)["artifact"], t.target) for t in annotated(h) if "version" in parts(t)}
    return any(
        "stage" in parts(t) and (parts(t)["artifact"], t.target) not in registered
        for t in annotated(h)
    )


def counters_against_time(h: History) -> bool:
    """A higher #N dated earlier than a lower #N of the same artifact (S12)."""
    stamps: dict[str, list[tuple[int, int]]] = {}
    for tag in annotated(h):
        p = parts(tag)
        if "counter" in p and tag.when is not None:
            stamps.setdefault(p["artifact"], []).append((int(p["counter"]), tag.when.epoch))
    return any(
        (c1 - c2) * (e1 - e2) < 0
        for pairs in stamps.values()
        for (c1, e1), (c2, e2) in itertools.combinations(pairs, 2)
    )


def duplicate_version(h: History) -> bool:
    """One version name registered on two commits."""
    commits: dict[tuple[str, str], set[int | str]] = {}
    for tag in annotated(h):
        p = parts(tag)
        if "version" in p and not p.get("cancel"):
            commits.setdefault((p["artifact"], p["version"]), set()).add(tag.target)
    return any(len(targets) > 1 for targets in commits.values())


def two_versions_on_a_commit(h: History) -> bool:
    versions: dict[tuple[str, int | str], set[str]] = {}
    for tag in annotated(h):
        p = parts(tag)
        if "version" in p:
            versions.setdefault((p["artifact"], tag.target), set()).add(p["version"])
    return any(len(names) > 1 for names in versions.values())


def commit_after_deprecation(h: History) -> bool:
    deprecations = [t.when.epoch for t in annotated(h) if "dep" in parts(t) and t.when]
    return any(c.when.epoch > min(deprecations) for c in h.commits) if deprecations else False


def head_yaml_mixes(h: History) -> bool:
    """artifacts.yaml at HEAD lists a tagged artifact and one never tagged."""
    listed = set(yaml.safe_load(h.commits[-1].artifacts_yaml or "{}") or {})
    return bool(listed & set(YAML_ONLY)) and bool(listed - set(YAML_ONLY))


FEATURES: dict[str, Callable[[History], bool]] = {
    "same-second tie within an artifact": same_second_tie,
    "three or more time zones": zones,
    "registration": has(lambda p: "version" in p and not p.get("cancel")),
    "deregistration": has(lambda p: "version" in p and bool(p.get("cancel"))),
    "re-registration": reregistration,
    "assignment with counter": has(lambda p: "stage" in p and "counter" in p),
    "unassignment": has(lambda p: "stage" in p and bool(p.get("cancel"))),
    "deprecation": has(lambda p: "dep" in p and "counter" not in p),
    "deprecation with counter": has(lambda p: "dep" in p and "counter" in p),
    "dir:name artifact": has(lambda p: "=" in p["artifact"]),
    "prerelease version": has(lambda p: "-" in p.get("version", "")),
    "build metadata version": has(lambda p: "+" in p.get("version", "")),
    "stage tag on an unregistered commit": stage_on_unregistered_commit,
    "version name on two commits": duplicate_version,
    "two versions on one commit, no stage tag": two_versions_on_a_commit,
    "counter order disagrees with time": counters_against_time,
    "tag of a tag": lambda h: any(isinstance(t.target, str) for t in h.tags),
    "lightweight GTO look-alike": lambda h: any(t.when is None for t in h.tags),
    "non-GTO annotated tag": lambda h: any(
        t.when is not None and not GTO_TAG.match(t.name) for t in h.tags
    ),
    "commit newer than a deprecation": commit_after_deprecation,
    "artifacts.yaml at HEAD, tagged and untagged names": head_yaml_mixes,
    ".gto stages config": lambda h: h.gto_config is not None,
    "packed refs": lambda h: h.pack_refs,
    "loose refs": lambda h: not h.pack_refs,
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_default_seeds_cover(feature: str) -> None:
    histories = [random_history(seed) for seed in range(SEED_START, SEED_START + SEEDS)]
    assert any(FEATURES[feature](h) for h in histories), f"no default seed has: {feature}"


def test_same_seed_same_history() -> None:
    assert random_history(3) == random_history(3)
    assert random_history(3) != random_history(4)


@pytest.mark.parametrize("crash", list(Crash))
def test_crash_histories_add_only_the_crash(crash: Crash) -> None:
    normal, crashing = random_history(5), random_history(5, crash)
    assert crashing.tags[: len(normal.tags)] == normal.tags
    assert crashing.offending
    assert {t.name for t in crashing.tags} >= set(crashing.offending)


def test_written_repository_has_every_tag_with_its_date(tmp_path: Path) -> None:
    history = random_history(SEED_START)
    written = write(history, tmp_path / "repo")
    listing = subprocess.run(
        [
            "git",
            "-C",
            str(written.path),
            "for-each-ref",
            "refs/tags",
            "--format=%(refname:strip=2) %(objecttype) %(taggerdate:raw)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    expected = sorted(
        # git prints the "unknown zone" -0000 as +0000
        f"{t.name} tag {t.when.raw().replace('-0000', '+0000')}" if t.when else f"{t.name} commit "
        for t in history.tags
    )
    assert sorted(listing) == expected
    assert len(written.commits) == len(history.commits)

"""Scenarios of gto-semantics.md §6.1, written by the conformance history writer (one
`git fast-import`, tagger dates and zones per tag, tags of tags, lightweight tags), with GTO's
documented answers asserted against gto 1.10.1 itself AND gitstage (`show` fixture).

Passing on gto validates the writer: the repositories say what the scenarios say. Passing on
gitstage checks gitstage against the documented answers.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conformance.history import (
    BASE_EPOCH,
    PEOPLE,
    Script,
    git_tag_annotated,
    tag_prefix,
)
from tests.conformance.runners import (
    Show,
    listed_versions,
    run_gitstage,
    run_gto,
    show_json,
)
from tests.support.fast_import import Stamp

pytestmark = pytest.mark.oracle

MIDNIGHT = 6400  # BASE_EPOCH + 6400 s is 2023-11-15T00:00:00Z


def two_versions(script: Script) -> tuple[int, int]:
    """m@v1.0.0 on c1 at t1, m@v2.0.0 on c2 at t2."""
    c1, c2 = script.commit(), script.commit()
    script.tag("m@v1.0.0", c1, 1)
    script.tag("m@v2.0.0", c2, 2)
    return c1, c2


def test_s11_latest_assignment_wins_semver_sort_disagrees(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, c2 = two_versions(script)
    script.tag("m#prod#1", c2, 3)
    script.tag("m#prod#2", c1, 4)
    repo = script.write(tmp_path / "r").path
    assert listed_versions(show, repo, "m#prod") == ["v1.0.0"]
    assert listed_versions(show, repo, "m#prod", "--sort", "semver") == ["v2.0.0"]
    assert listed_versions(show, repo, "m#prod", "--vs", "-1") == ["v2.0.0", "v1.0.0"]


def test_s12_counter_is_ignored(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, c2 = two_versions(script)
    script.tag("m#prod#5", c2, 3)
    script.tag("m#prod#1", c1, 4)
    repo = script.write(tmp_path / "r").path
    assert listed_versions(show, repo, "m#prod") == ["v1.0.0"]


def test_s13_unassign_wins_a_same_second_tie(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, _ = two_versions(script)
    script.tag("m#dev#6", c1, 3)
    script.tag("m#dev!#7", c1, 3, tz="+0300")
    repo = script.write(tmp_path / "r").path
    assert listed_versions(show, repo, "m#dev") == []
    assert show_json(show, repo)["m"]["stage"] == {}


@pytest.mark.parametrize(("first", "second"), [("#8", "#9"), ("#9", "#8")])
def test_s14_same_second_assignments(show: Show, tmp_path: Path, first: str, second: str) -> None:
    script = Script()
    c1, c2 = two_versions(script)
    script.tag(f"m#staging{first}", c1, 3)
    script.tag(f"m#staging{second}", c2, 3, tz="-0700")
    repo = script.write(tmp_path / "r").path
    assert listed_versions(show, repo, "m#staging") == ["v1.0.0"]
    assert listed_versions(show, repo, "m#staging", "--sort", "semver") == ["v2.0.0"]


def test_s15_time_zones_compare_as_instants(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, c2 = two_versions(script)
    script.tag("m#prod#1", c2, MIDNIGHT + 7 * 3600, tz="+0300")  # 10:00 +0300 = 07:00Z
    script.tag("m#prod#2", c1, MIDNIGHT + 8 * 3600, tz="+0000")  # 08:00 +0000
    repo = script.write(tmp_path / "r").path
    assert listed_versions(show, repo, "m#prod") == ["v1.0.0"]


def test_s16_unassign_brings_back_the_previous_holder(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, c2 = two_versions(script)
    script.tag("m#prod#1", c1, 3)
    script.tag("m#prod#2", c2, 4)
    before = script.write(tmp_path / "before")
    after = script.write(tmp_path / "after")
    when = Stamp(BASE_EPOCH + 5, "-0700")
    git_tag_annotated(after.path, "m#prod!#3", after.commits[c2], when, PEOPLE[2])
    assert listed_versions(show, before.path, "m#prod") == ["v2.0.0"]
    assert listed_versions(show, after.path, "m#prod") == ["v1.0.0"]


def test_s18_deregistered_version_leaves_the_stage(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, c2 = two_versions(script)
    script.tag("m#prod#1", c1, 3)
    script.tag("m#prod#2", c2, 4)
    script.tag("m@v2.0.0!", c2, 5)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)["m"] == {
        "version": "v1.0.0",
        "stage": {"prod": "v1.0.0"},
        "registered": True,
        "active": True,
    }
    rows = show_json(show, repo, "m", "-d")
    assert [(r["version"], r["is_active"]) for r in rows] == [("v2.0.0", False), ("v1.0.0", True)]


def test_s20_reregistration_restores_the_old_assignment(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, c2 = two_versions(script)
    script.tag("m#prod#1", c1, 3)
    script.tag("m#prod#2", c2, 4)
    script.tag("m@v2.0.0!", c2, 5)
    script.tag("m@v2.0.0#3", c2, 6)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)["m"]["stage"] == {"prod": "v2.0.0"}
    (v2,) = [r for r in show_json(show, repo, "m") if r["version"] == "v2.0.0"]
    assert sorted(r["tag"] for r in v2["registrations"]) == ["m@v2.0.0", "m@v2.0.0#3"]
    assert v2["ref"] == "m@v2.0.0#3"  # the newest registration


def test_s21_assignment_to_a_deregistered_version_is_invisible(show: Show, tmp_path: Path) -> None:
    script = Script()
    _, c2 = two_versions(script)
    script.tag("m@v2.0.0!", c2, 3)
    script.tag("m#prod#1", c2, 4)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)["m"]["stage"] == {}
    assert listed_versions(show, repo, "m#prod") == []


def test_s22_s23_deprecation_hides_until_a_newer_event(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1 = script.commit()
    script.tag("m@v0.0.1", c1, 1)
    script.tag("m#prod#1", c1, 2)
    script.tag("m@deprecated", c1, 3)
    deprecated = script.write(tmp_path / "deprecated").path
    c2 = script.commit()
    script.tag("m@v0.0.2", c2, 4)
    revived = script.write(tmp_path / "revived").path
    assert show_json(show, deprecated) == {}
    assert show_json(show, deprecated, "-d")["m"] == {
        "version": "v0.0.1",
        "stage": {"prod": "v0.0.1"},
        "registered": True,
        "active": False,
    }
    assert show_json(show, deprecated, "m") == []
    assert show_json(show, revived)["m"]["stage"] == {"prod": "v0.0.1"}


@pytest.mark.parametrize(("commit_at", "hidden"), [(-10_000, True), (5000, False)])
def test_s24_commit_dates_take_part_in_deprecation(
    show: Show, tmp_path: Path, commit_at: int, hidden: bool
) -> None:
    script = Script()
    c1 = script.commit(at=commit_at, tz="-0700")
    script.tag("m@v1.0.0", c1, 1001)
    script.tag("m@deprecated", c1, 1005, tz="+0530")
    repo = script.write(tmp_path / "r").path
    assert ("m" not in show_json(show, repo)) is hidden


def test_deprecation_ties_with_a_version_event_keep_the_artifact(
    show: Show, tmp_path: Path
) -> None:
    script = Script()
    c1 = script.commit()
    script.tag("m@deprecated", c1, 7)
    script.tag("m@v1.0.0", c1, 7, tz="+1345")
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)["m"]["active"] is True


def test_deregistration_wins_a_same_second_tie(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1 = script.commit()
    script.tag("m@v1.0.0!", c1, 7)
    script.tag("m@v1.0.0", c1, 7, tz="-1100")
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)["m"]["version"] is None
    assert show_json(show, repo, "m") == []


def test_s25_lightweight_tags_are_ignored(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1, c2 = script.commit(), script.commit()
    script.tag("m@v1.0.0", c1, 1)
    script.tag("m@v9.9.9", c2, None)
    script.tag("m#prod#7", c1, None)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)["m"] == {
        "version": "v1.0.0",
        "stage": {},
        "registered": True,
        "active": True,
    }
    assert listed_versions(show, repo, "m") == ["v1.0.0"]


def av_history(script: Script) -> None:
    c1, c2 = two_versions(script)
    script.tag("m#dev#1", c1, 3)
    script.tag("m#staging#2", c1, 4)
    script.tag("m#prod#3", c1, 5)
    script.tag("m#dev#4", c2, 6)


def test_s28_av_keeps_the_oldest_stages(show: Show, tmp_path: Path) -> None:
    script = Script()
    av_history(script)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo, "--av", "1")["m"]["stage"] == {
        "dev": "v2.0.0",
        "prod": None,
        "staging": None,
    }


def test_s29_vs_lists_several_versions(show: Show, tmp_path: Path) -> None:
    script = Script()
    av_history(script)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo, "--vs", "2")["m"]["stage"]["dev"] == "v2.0.0, v1.0.0"


def test_s30_stage_tags_on_an_unregistered_commit(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1 = script.commit()
    script.tag("m#dev#1", c1, 1)
    script.tag("m#prod#2", c1, 2)
    written = script.write(tmp_path / "r")
    sha = written.commits[c1]
    repo = written.path
    assert show_json(show, repo)["m"] == {
        "version": None,
        "stage": {"dev": sha, "prod": sha},
        "registered": True,
        "active": True,
    }
    assert show_json(show, repo, "--ro")["m"]["stage"] == {"dev": None, "prod": None}
    assert listed_versions(show, repo, "m") == [sha] * 4
    assert listed_versions(show, repo, "m@latest") == [sha]


def test_s31_config_stages_restrict_the_columns_only(show: Show, tmp_path: Path) -> None:
    script = Script(gto_config="stages: [dev, prod]\n")
    c1 = script.commit()
    script.tag("m@v0.0.1", c1, 1)
    script.tag("m#dev#1", c1, 2)
    script.tag("m#qa#9", c1, 3)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)["m"]["stage"] == {"dev": "v0.0.1", "prod": None}
    assert listed_versions(show, repo, "m#qa") == ["v0.0.1"]


def zoned_registry(path: Path, tz: str) -> Path:
    """m@v1.0.0 on a commit, both dated in zone `tz` by git itself (fast-import refuses zones
    past 14 hours; `git commit` and `git tag` write any four digits)."""
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    env = {
        "GIT_COMMITTER_DATE": f"@1700000001 {tz}",
        "GIT_AUTHOR_DATE": f"@1700000001 {tz}",
        "GIT_AUTHOR_NAME": "A",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "A",
        "GIT_COMMITTER_EMAIL": "a@example.com",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(path),
    }
    for command in (["commit", "-q", "--allow-empty", "-m", "train"], ["tag", "-a", "-m", "r"]):
        args = [*command, "m@v1.0.0"] if command[0] == "tag" else command
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env)
    return path


@pytest.mark.parametrize(("tz", "written"), [("+1500", "+15:00"), ("-2359", "-23:59")])
def test_a_zone_libgit2_reads_as_utc_is_read_as_gto_reads_it(
    show: Show, tmp_path: Path, tz: str, written: str
) -> None:
    # libgit2 takes a zone past 14 hours for UTC. GTO reads a tagger's digits as written, and
    # a commit's zone as libgit2 does.
    (row,) = show_json(show, zoned_registry(tmp_path / "r", tz), "m")
    assert row["created_at"].endswith(written)
    assert row["enrichments"][0]["created_at"].endswith("+00:00")


@pytest.mark.parametrize("tz", ["+2400", "-9959"])
def test_a_zone_of_a_day_or_more_fails_as_gto_fails(show: Show, tmp_path: Path, tz: str) -> None:
    assert show(zoned_registry(tmp_path / "r", tz), ["--json"]).exit_code != 0


# `.gto` texts and whether GTO reads them: its settings forbid unknown keys and check the
# types of the keys it knows, even those that change no answer (emojis, log level).
GTO_FILES = {
    "unknown_key: 1\n": False,
    "Unknown: null\n": False,
    "emojis: notabool\n": False,
    "log_level: 5\n": False,
    "enrichments: [x]\n": False,
    "index: 5\n": False,
    "debug: yes\n": True,
    "enrichments: []\n": True,
    "config_file_name: 5\n": True,
    "EMOJIS: false\nSTAGES: [dev]\n": True,
}


@pytest.mark.parametrize("text", list(GTO_FILES))
def test_a_gto_file_is_refused_exactly_when_gto_refuses_it(tmp_path: Path, text: str) -> None:
    script = Script(gto_config=text)
    script.tag("m@v0.0.1", script.commit(), 1)
    repo = script.write(tmp_path / "r").path
    read = GTO_FILES[text]
    for outcome in (run_gto(repo, ["--json"]), run_gitstage(repo, ["--json"])):
        assert (outcome.exit_code == 0) is read, outcome
        assert ("Wrong config file" in outcome.stdout + outcome.stderr) is not read, outcome


def test_s32_artifacts_yaml_at_head_discovers_artifacts(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1 = script.commit()
    script.commit(artifacts_yaml="rf:\n  type: model\n  path: rf.pkl\nfeat:\n  type: dataset\n")
    script.tag("rf@v0.0.1", c1, 1)
    written = script.write(tmp_path / "r")
    registry = show_json(show, written.path)
    assert (registry["rf"]["registered"], registry["rf"]["version"]) == (True, "v0.0.1")
    assert (registry["feat"]["registered"], registry["feat"]["version"]) == (False, None)
    assert listed_versions(show, written.path, "rf") == ["v0.0.1", written.commits[1]]


def test_s34_prerelease_and_build_metadata_order(show: Show, tmp_path: Path) -> None:
    script = Script()
    registered = ["v1.0.0-rc.1", "v1.0.1", "v1.0.0", "v1.0.0+build.5", "v1.1.0-alpha+meta"]
    for at, version in enumerate(registered, start=1):
        script.tag(f"m@{version}", script.commit(), at)
    repo = script.write(tmp_path / "r").path
    expected = ["v1.1.0-alpha+meta", "v1.0.1", "v1.0.0+build.5", "v1.0.0", "v1.0.0-rc.1"]
    assert listed_versions(show, repo, "m") == expected
    assert listed_versions(show, repo, "m@latest") == ["v1.1.0-alpha+meta"]
    assert show_json(show, repo)["m"]["version"] == "v1.1.0-alpha+meta"


def test_s36_tag_of_a_tag_names_the_inner_tag_object(show: Show, tmp_path: Path) -> None:
    script = Script()
    two_versions(script)
    script.tag("m#dev#3", "m@v2.0.0", 3)
    written = script.write(tmp_path / "r")
    tag_object = written.tags["m@v2.0.0"]
    assert show_json(show, written.path)["m"]["stage"] == {"dev": tag_object}
    # One row per Version object: GTO keeps an empty twin of each SHA version (§3.1 quirk).
    assert listed_versions(show, written.path, "m#dev") == [tag_object] * 2


def test_s39_unknown_artifact_and_stage(show: Show, tmp_path: Path) -> None:
    script = Script()
    two_versions(script)
    repo = script.write(tmp_path / "r").path
    outcome = show(repo, ["--json", "nope"])
    assert outcome.exit_code != 0
    assert outcome.stdout == ""
    assert "nope" in outcome.stderr
    assert show_json(show, repo, "m#nostage") == []


@pytest.mark.parametrize("name", ["cv:seg", "path/to:model", "a.b/c_d:Model_X"])
def test_s5_s40_dir_artifacts(show: Show, tmp_path: Path, name: str) -> None:
    script = Script()
    c1 = script.commit()
    script.tag(f"{tag_prefix(name)}@v1.0.0", c1, 1)
    script.tag(f"{tag_prefix(name)}#prod#1", c1, 2)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo)[name]["stage"] == {"prod": "v1.0.0"}
    assert listed_versions(show, repo, f"{name}#prod") == ["v1.0.0"]


def test_malformed_and_non_gto_tags_are_skipped(show: Show, tmp_path: Path) -> None:
    script = Script()
    c1 = script.commit()
    script.tag("m@v1.0.0", c1, 1)
    for at, name in enumerate(
        ["v1.0.0", "release-3", "m@V2.0.0", "m#prod##1", "a=b=c@v1.0.0", "m@latest", "x@v1"],
        start=2,
    ):
        script.tag(name, c1, at)
    repo = script.write(tmp_path / "r").path
    assert show_json(show, repo) == {
        "m": {"version": "v1.0.0", "stage": {}, "registered": True, "active": True}
    }

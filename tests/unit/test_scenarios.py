"""Reading scenarios S10–S39 of gto-semantics.md §6.1, with GTO's documented answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitstage import api
from gitstage.cli.main import cli
from gitstage.domain.registry.state import RegistryError
from tests.support.scratch import ScratchRepo, When


@pytest.fixture
def repo(scratch: ScratchRepo) -> ScratchRepo:
    return scratch


def two_versions(repo: ScratchRepo) -> tuple[str, str]:
    """m@v1.0.0 on c1 at t1, m@v2.0.0 on c2 at t2."""
    c1 = repo.commit({"a": "1"}, When(0))
    c2 = repo.commit({"a": "2"}, When(0))
    repo.tag("m@v1.0.0", c1, When(1))
    repo.tag("m@v2.0.0", c2, When(2))
    return c1, c2


def stage(repo: ScratchRepo, name: str, *, sort: str = "timestamp", vs: int = 1) -> list[str]:
    rows = api.show(repo.path, f"m#{name}", sort=sort, versions_per_stage=vs)
    return [row["version"] for row in rows]


def registry(repo: ScratchRepo, **flags: object) -> dict[str, object]:
    result: dict[str, object] = api.show(repo.path, **flags)  # type: ignore[arg-type]
    return result


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_s11_latest_assignment_wins_but_semver_api_disagrees(repo: ScratchRepo) -> None:
    c1, c2 = two_versions(repo)
    repo.tag("m#prod#1", c2, When(3))
    repo.tag("m#prod#2", c1, When(4))
    assert stage(repo, "prod") == ["v1.0.0"]
    assert stage(repo, "prod", sort="semver") == ["v2.0.0"]
    assert stage(repo, "prod", vs=-1) == ["v2.0.0", "v1.0.0"]
    holder = api.find_version_in_stage(repo.path, "m", "prod")
    assert holder is not None
    assert (holder.version, holder.commit, holder.registration_tag, holder.assignment_tag) == (
        "v1.0.0",
        c1,
        "m@v1.0.0",
        "m#prod#2",
    )
    semver_holder = api.find_version_in_stage(repo.path, "m", "prod", sort="semver")
    assert semver_holder is not None
    assert semver_holder.version == "v2.0.0"


def test_s12_counter_is_ignored(repo: ScratchRepo) -> None:
    c1, c2 = two_versions(repo)
    repo.tag("m#prod#5", c2, When(3))
    repo.tag("m#prod#1", c1, When(4))
    assert stage(repo, "prod") == ["v1.0.0"]


def test_s13_unassign_wins_a_same_second_tie(repo: ScratchRepo) -> None:
    c1, _ = two_versions(repo)
    repo.tag("m#dev#6", c1, When(3))
    repo.tag("m#dev!#7", c1, When(3))
    assert stage(repo, "dev") == []


@pytest.mark.parametrize(
    ("first", "second"), [("m#staging#8", "m#staging#9"), ("m#staging#9", "m#staging#8")]
)
def test_s14_same_second_lower_semver_wins_by_time(
    repo: ScratchRepo, first: str, second: str
) -> None:
    c1, c2 = two_versions(repo)
    repo.tag(first, c1, When(3))
    repo.tag(second, c2, When(3))
    assert stage(repo, "staging") == ["v1.0.0"]
    assert stage(repo, "staging", sort="semver") == ["v2.0.0"]


def test_s15_offsets_compare_as_absolute_instants(repo: ScratchRepo) -> None:
    c1, c2 = two_versions(repo)
    # Wall-clock 10:00 at +0300 is 07:00Z: older than 08:00 +0000, though it reads later.
    repo.tag("m#prod#1", c2, When(10 * 3600 - 3 * 3600, 180))
    repo.tag("m#prod#2", c1, When(8 * 3600, 0))
    assert stage(repo, "prod") == ["v1.0.0"]
    rows = api.show(repo.path, "m#prod", versions_per_stage=-1)
    created = {r["version"]: r["stages"][0]["created_at"] for r in rows}
    assert created["v2.0.0"].endswith("+03:00")


def test_s16_unassigning_the_holder_brings_back_the_previous_one(repo: ScratchRepo) -> None:
    c1, c2 = two_versions(repo)
    repo.tag("m#prod#1", c1, When(3))
    repo.tag("m#prod#2", c2, When(4))
    assert stage(repo, "prod") == ["v2.0.0"]
    repo.tag("m#prod!#3", c2, When(5))
    assert stage(repo, "prod") == ["v1.0.0"]


def test_s18_s20_deregistration_and_re_registration(repo: ScratchRepo) -> None:
    c1, c2 = two_versions(repo)
    repo.tag("m#prod#1", c1, When(3))
    repo.tag("m#prod#2", c2, When(4))
    repo.tag("m@v2.0.0!", c2, When(5))
    assert registry(repo)["m"] == {
        "version": "v1.0.0",
        "stage": {"prod": "v1.0.0"},
        "registered": True,
        "active": True,
    }
    deprecated_rows = api.show(repo.path, "m", deprecated=True)
    assert [(r["version"], r["is_active"]) for r in deprecated_rows] == [
        ("v2.0.0", False),
        ("v1.0.0", True),
    ]
    repo.tag("m@v2.0.0#3", c2, When(6))
    assert registry(repo)["m"]["stage"] == {"prod": "v2.0.0"}  # type: ignore[index]


def test_register_and_deregister_in_one_second_deregister_wins(repo: ScratchRepo) -> None:
    c1 = repo.commit({"a": "1"})
    repo.tag("m@v1.0.0", c1, When(1))
    repo.tag("m@v1.0.0!", c1, When(1))
    assert registry(repo)["m"]["version"] is None  # type: ignore[index]


def test_s21_assignments_to_a_deregistered_version_are_invisible(repo: ScratchRepo) -> None:
    _, c2 = two_versions(repo)
    repo.tag("m@v2.0.0!", c2, When(3))
    repo.tag("m#prod#1", c2, When(4))
    repo.tag("m#qa#2", c2, When(5))
    assert registry(repo)["m"]["stage"] == {}  # type: ignore[index]


def test_s22_s23_deprecation_hides_until_a_newer_event(repo: ScratchRepo) -> None:
    c1 = repo.commit({"a": "1"}, When(0))
    repo.tag("m@v0.0.1", c1, When(1))
    repo.tag("m#prod#1", c1, When(2))
    repo.tag("m@deprecated", c1, When(3))
    assert registry(repo) == {}
    assert registry(repo, deprecated=True)["m"] == {
        "version": "v0.0.1",
        "stage": {"prod": "v0.0.1"},
        "registered": True,
        "active": False,
    }
    assert api.show(repo.path, "m") == []
    c2 = repo.commit({"a": "2"}, When(4))
    repo.tag("m@v0.0.2", c2, When(5))
    assert registry(repo)["m"]["stage"] == {"prod": "v0.0.1"}  # type: ignore[index]


def test_deprecation_in_the_same_second_as_a_version_event_keeps_the_artifact(
    repo: ScratchRepo,
) -> None:
    c1 = repo.commit({"a": "1"}, When(0))
    repo.tag("m@v0.0.1", c1, When(5))
    repo.tag("m@deprecated", c1, When(5))
    assert registry(repo)["m"]["active"] is True  # type: ignore[index]


def test_s24_commit_dated_after_the_deprecation_keeps_it_active(repo: ScratchRepo) -> None:
    old = repo.commit({"a": "1"}, When(-1000))
    repo.tag("m@v1.0.0", old, When(1))
    repo.tag("m@deprecated", old, When(5))
    assert registry(repo) == {}
    other = ScratchRepo(repo.path.parent / "later")
    late = other.commit({"a": "1"}, When(1000))
    other.tag("m@v1.0.0", late, When(1))
    other.tag("m@deprecated", late, When(5))
    assert registry(other)["m"]["active"] is True  # type: ignore[index]


def test_s25_lightweight_tags_are_ignored(repo: ScratchRepo) -> None:
    c1, _ = two_versions(repo)
    repo.lightweight("m@v9.9.9", c1)
    repo.lightweight("m#prod#7", c1)
    assert registry(repo)["m"] == {
        "version": "v2.0.0",
        "stage": {},
        "registered": True,
        "active": True,
    }
    assert run("check-ref", "m#prod#7", "-r", str(repo.path)) == (0, "", "")


def test_s26_created_tags_are_a_one_line_error(repo: ScratchRepo) -> None:
    c1, _ = two_versions(repo)
    repo.lightweight("m@created", c1)
    with pytest.raises(RegistryError, match="m@created"):
        api.show(repo.path)
    code, out, err = run("show", "-r", str(repo.path))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "m@created" in err


def test_s28_s29_assignments_and_versions_per_stage(repo: ScratchRepo) -> None:
    c1, c2 = two_versions(repo)
    repo.tag("m#dev#1", c1, When(3))
    repo.tag("m#staging#2", c1, When(4))
    repo.tag("m#prod#3", c1, When(5))
    repo.tag("m#dev#4", c2, When(6))
    assert registry(repo, assignments_per_version=1)["m"]["stage"] == {  # type: ignore[index]
        "dev": "v2.0.0",
        "prod": None,
        "staging": None,
    }
    assert registry(repo, versions_per_stage=2)["m"]["stage"]["dev"] == "v2.0.0, v1.0.0"  # type: ignore[index]


def test_s30_stage_tags_on_unregistered_commits(repo: ScratchRepo) -> None:
    c1 = repo.commit({"a": "1"}, When(0))
    repo.tag("m#dev#1", c1, When(1))
    repo.tag("m#prod#2", c1, When(2))
    assert registry(repo)["m"] == {
        "version": None,
        "stage": {"dev": c1, "prod": c1},
        "registered": True,
        "active": True,
    }
    assert registry(repo, registered_only=True)["m"]["stage"] == {"dev": None, "prod": None}  # type: ignore[index]
    assert [r["version"] for r in api.show(repo.path, "m")] == [c1] * 4
    assert api.latest(repo.path, "m") is None
    assert [r["version"] for r in api.show(repo.path, "m@latest")] == [c1]


def test_s31_configured_stages_limit_columns_not_resolution(repo: ScratchRepo) -> None:
    c1 = repo.commit({".gto": "stages: [dev, prod]\n"}, When(0))
    repo.tag("m@v0.0.1", c1, When(1))
    repo.tag("m#qa#9", c1, When(2))
    assert registry(repo)["m"]["stage"] == {"dev": None, "prod": None}  # type: ignore[index]
    assert [r["version"] for r in api.show(repo.path, "m#qa")] == ["v0.0.1"]


def test_s32_artifacts_yaml_discovers_unregistered_artifacts(repo: ScratchRepo) -> None:
    index = "rf:\n  path: rf.pkl\n  type: model\nfeat:\n  path: feat.csv\n"
    c1 = repo.commit({"artifacts.yaml": index}, When(0))
    assert registry(repo) == {
        "rf": {"version": None, "stage": {}, "registered": False, "active": True},
        "feat": {"version": None, "stage": {}, "registered": False, "active": True},
    }
    repo.tag("rf@v0.0.1", c1, When(1))
    assert registry(repo)["rf"]["version"] == "v0.0.1"  # type: ignore[index]
    head = repo.commit({"x": "1"}, When(2))
    rows = api.show(repo.path, "rf")
    assert [(r["version"], r["discovered"]) for r in rows] == [("v0.0.1", False), (head, True)]
    assert rows[0]["enrichments"][0]["enrichments"][0]["artifact"]["path"] == "rf.pkl"


def test_s33_describe_per_revision_and_corrupt_index(repo: ScratchRepo) -> None:
    c1 = repo.commit({"artifacts.yaml": "rf:\n  path: old.pkl\n"}, When(0))
    repo.tag("rf@v0.0.1", c1, When(1))
    repo.commit({"artifacts.yaml": "rf:\n  path: new.pkl\n"}, When(2))
    old, new = api.describe(repo.path, "rf@v0.0.1"), api.describe(repo.path, "rf")
    assert old is not None
    assert new is not None
    assert (old.path, new.path) == ("old.pkl", "new.pkl")
    code, out, _ = run("describe", "rf", "--path", "-r", str(repo.path))
    assert (code, out) == (0, "new.pkl\n")
    repo.commit({"artifacts.yaml": "rf: [unclosed\n"}, When(3))
    code, out, err = run("show", "-r", str(repo.path))
    assert code == 1
    assert "artifacts.yaml" in err
    assert err.count("\n") == 1


def test_s34_prereleases_and_build_metadata(repo: ScratchRepo) -> None:
    for seconds, version in enumerate(
        ["v1.0.0-rc.1", "v1.0.1", "v1.0.0", "v1.0.0+build.5", "v1.1.0-alpha+meta"], start=1
    ):
        repo.tag(f"m@{version}", repo.commit({"v": version}, When(0)), When(seconds))
    assert [r["version"] for r in api.show(repo.path, "m")] == [
        "v1.1.0-alpha+meta",
        "v1.0.1",
        "v1.0.0+build.5",
        "v1.0.0",
        "v1.0.0-rc.1",
    ]
    latest = api.latest(repo.path, "m")
    assert latest is not None
    assert latest.version == "v1.1.0-alpha+meta"


def test_s35_two_versions_on_one_commit_with_a_stage_tag(repo: ScratchRepo) -> None:
    c1 = repo.commit({"a": "1"}, When(0))
    repo.tag("m@v1.0.0", c1, When(1))
    repo.tag("m#prod#1", c1, When(2))
    repo.tag("m@v3.0.0", c1, When(3))
    code, _, err = run("show", "-r", str(repo.path))
    assert code == 1
    assert err.count("\n") == 1
    for tag in ("m@v1.0.0", "m@v3.0.0", "m#prod#1"):
        assert tag in err


def test_s36_tag_of_a_tag_names_the_inner_tag_object(repo: ScratchRepo) -> None:
    _, c2 = two_versions(repo)
    inner = str(repo.repo.references["refs/tags/m@v2.0.0"].target)
    repo.tag("m#dev#3", inner, When(3))
    assert registry(repo)["m"]["stage"] == {"dev": inner}  # type: ignore[index]
    assert inner != c2


def test_s37_s38_s39_selectors_check_ref_and_errors(repo: ScratchRepo) -> None:
    c1, _ = two_versions(repo)
    repo.tag("m#prod#3", c1, When(3))
    path = str(repo.path)
    assert run("show", "m#prod", "--ref", "-r", path) == (0, "m@v1.0.0\n", "")
    assert run("show", "m#prod", "--version", "-r", path) == (0, "v1.0.0\n", "")
    assert run("check-ref", "refs/tags/m#prod#3", "--name", "-r", path) == (0, "m\n", "")
    assert run("check-ref", "m#prod#3", "--event", "-r", path) == (0, "assignment\n", "")
    assert run("check-ref", "this-tag-does-not-exist", "-r", path) == (0, "", "")
    assert run("show", "nope", "-r", path) == (
        1,
        "",
        "gitstage: error: Cannot find artifact 'nope'\n",
    )
    assert run("show", "m#nostage", "--json", "-r", path) == (0, "[]\n", "")
    code, _, err = run("show", "--ref", "-r", path)
    assert (code, err) == (1, "gitstage: error: Cannot apply --ref\n")


def test_unreadable_repository_is_a_one_line_error(tmp_path: Path) -> None:
    assert run("show", "-r", str(tmp_path)) == (
        1,
        "",
        f"gitstage: error: not a git repository: {tmp_path}\n",
    )


def test_history_orders_by_time_then_priority(repo: ScratchRepo) -> None:
    c1, _ = two_versions(repo)
    repo.tag("m#prod#1", c1, When(2))
    events = api_history(repo)
    assert [(e["event"], e["ref"]) for e in events] == [
        ("assignment", "m#prod#1"),
        ("registration", "m@v2.0.0"),
        ("registration", "m@v1.0.0"),
    ]


def api_history(repo: ScratchRepo) -> list[dict[str, str]]:
    import json

    code, out, _ = run("history", "--json", "-r", str(repo.path))
    assert code == 0
    result: list[dict[str, str]] = json.loads(out)
    return result

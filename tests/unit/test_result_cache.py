"""The result cache of `show --json` and the click-free fast path that serves it.

A stored document is served only while every input is unchanged: each test first poisons the
stored documents (proving the next run is a cache hit when it prints the poison), then changes
one input and checks the output is recomputed and equals an uncached run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gitstage.adapters.git import result_cache
from gitstage.adapters.git.result_cache import ResultCache, code_fingerprint, result_path
from gitstage.cli.show import show_command
from gitstage.cli.show_json import parse_argv
from gitstage.reading import ShowRequest
from tests.support.scratch import ScratchRepo, When
from tests.unit.conftest import git

OPERATOR = Path(__file__).resolve().parents[2] / "operator"
POISON = '{"poisoned": true}\n'


def show(path: Path, *flags: str, cache: bool = True, env: dict[str, str] | None = None) -> str:
    """`python -m gitstage show --json` as a user runs it (the fast path first)."""
    environ = {**os.environ, "PYTHONPATH": str(OPERATOR), **(env or {})}
    if not cache:
        environ[result_cache.DISABLE_ENV] = "off"
    proc = subprocess.run(
        [sys.executable, "-m", "gitstage", "show", "--json", "-r", str(path), *flags],
        capture_output=True,
        text=True,
        env=environ,
        check=True,
    )
    return proc.stdout


def poison(path: Path) -> int:
    """Replace every stored document by POISON (stamps kept); returns how many there were."""
    cache = ResultCache.open(str(path / ".git"))
    for key, _, request, stamps in list(cache.entries):
        assert cache.put(key, POISON, request, stamps)
    return len(cache.entries)


def age(path: Path) -> None:
    """Date the refs, HEAD and `.gto` an hour back, past the racy window: stamps can vouch."""
    git_dir = path / ".git"
    hour_ago = time.time_ns() - 3600 * 10**9
    stamped = [git_dir / "HEAD", git_dir / "packed-refs", path / ".gto", git_dir / "refs"]
    stamped += (git_dir / "refs").rglob("*")
    for item in stamped:
        if item.exists():
            os.utime(item, ns=(hour_ago, hour_ago))


def stamps_of_newest(path: Path) -> tuple[tuple[str, int, int, int], ...] | None:
    return ResultCache.open(str(path / ".git")).entries[0][3]


@pytest.fixture
def repo(scratch: ScratchRepo) -> ScratchRepo:
    c1 = scratch.commit({"a": "1"}, When(0))
    c2 = scratch.commit({"artifacts.yaml": "m:\n  type: model\n  path: m.pkl\n"}, When(1))
    scratch.tag("m@v1.0.0", c1, When(2))
    scratch.tag("m@v2.0.0", c2, When(3))
    scratch.tag("m#prod#1", c2, When(4))
    scratch.tag("team/n@v0.1.0", c1, When(6))
    return scratch


@pytest.fixture(params=["just-written", "aged"])
def any_repo(request: pytest.FixtureRequest, repo: ScratchRepo) -> ScratchRepo:
    """The registry as just written (stamps too recent to trust) and as an hour old."""
    if request.param == "aged":
        age(repo.path)
    return repo


def test_a_warm_run_is_served_from_the_cache(repo: ScratchRepo) -> None:
    first = show(repo.path)
    assert first == show(repo.path, cache=False)
    assert "m" in first
    assert poison(repo.path) == 1
    assert show(repo.path) == POISON  # the hit: nothing recomputed


def _new_tag(repo: ScratchRepo) -> None:
    repo.tag("m#dev", str(repo.repo.head.target), When(8))


def _moved_tag(repo: ScratchRepo) -> None:
    c1 = str(repo.repo.revparse_single("HEAD~1").id)
    git(repo.path, "tag", "-f", "-a", "-m", "moved", "m#prod#1", c1)


def _deleted_tag(repo: ScratchRepo) -> None:
    repo.delete_tag("team/n@v0.1.0")


def _new_head(repo: ScratchRepo) -> None:
    repo.commit({"artifacts.yaml": "m:\n  type: dataset\n  path: d.csv\nz: {}\n"}, When(9))


def _config(repo: ScratchRepo) -> None:
    (repo.path / ".gto").write_text("stages: [prod, dev]\n")


@pytest.mark.parametrize(
    "change",
    [_new_tag, _moved_tag, _deleted_tag, _new_head, _config],
    ids=["new-tag", "moved-tag", "deleted-tag", "new-head", "gto-file"],
)
def test_any_change_of_an_input_misses(
    any_repo: ScratchRepo, change: Callable[[ScratchRepo], None]
) -> None:
    repo = any_repo
    before = show(repo.path)
    poison(repo.path)
    change(repo)
    after = show(repo.path)
    assert after != POISON
    assert after == show(repo.path, cache=False)
    assert after != before


def test_a_tag_moved_inside_packed_refs_misses(any_repo: ScratchRepo) -> None:
    repo = any_repo
    git(repo.path, "pack-refs", "--all")
    age(repo.path)
    before = show(repo.path)
    assert stamps_of_newest(repo.path) is not None
    poison(repo.path)
    _moved_tag(repo)
    git(repo.path, "pack-refs", "--all")  # only a line of packed-refs changed
    assert not (repo.path / ".git" / "refs" / "tags" / "m#prod#1").exists()
    after = show(repo.path)
    assert after not in (POISON, before)
    assert after == show(repo.path, cache=False)


def test_just_written_refs_are_not_stamped(repo: ScratchRepo) -> None:
    retired = repo.path / ".git" / "gitstage" / result_cache.RETIRED_FILES[0]
    retired.parent.mkdir()
    retired.write_bytes(b"an earlier format")
    show(repo.path)
    assert stamps_of_newest(repo.path) is None
    assert not retired.exists()


def test_unchanged_stamps_answer_without_listing_refs(repo: ScratchRepo) -> None:
    age(repo.path)
    expected = show(repo.path)
    stamps = stamps_of_newest(repo.path)
    assert stamps is not None
    refs_tags = str(repo.path / ".git" / "refs" / "tags")
    stamped = {path for path, *_ in stamps}
    assert {refs_tags, f"{refs_tags}/team", str(repo.path / ".git" / "HEAD")} <= stamped
    poison(repo.path)
    # Remove a tag behind git's back, then restore the directory's time: the listing is not
    # read, so the stored document is still served (the one change stamps cannot see).
    hidden = repo.path / ".git" / "refs" / "tags" / "team" / "n@v0.1.0"
    directory_time = hidden.parent.stat().st_mtime_ns
    hidden.unlink()
    os.utime(hidden.parent, ns=(directory_time, directory_time))
    assert show(repo.path) == POISON
    assert show(repo.path, env={result_cache.RESULT_ENV: "off"}) != expected


WARM_PROBE = """
import sys
sys.argv = ["gitstage", "show", "--json", "-r", sys.argv[1]]
from gitstage.cli.entry import main
main()
heavy = {"click", "pygit2", "re", "collections", "json", "gitstage.adapters.git.reader"}
print(sorted(heavy & set(sys.modules)), file=sys.stderr)
"""


def test_a_warm_console_script_run_imports_only_the_fast_path(repo: ScratchRepo) -> None:
    age(repo.path)
    expected = show(repo.path)
    proc = subprocess.run(
        [sys.executable, "-c", WARM_PROBE, str(repo.path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(OPERATOR)},
        check=True,
    )
    assert proc.stdout == expected
    assert proc.stderr.strip() == "[]"


def test_rewritten_but_equal_refs_are_restamped(repo: ScratchRepo) -> None:
    age(repo.path)
    before = show(repo.path)
    old_stamps = stamps_of_newest(repo.path)
    head = repo.path / ".git" / "HEAD"
    branch = head.read_text().removeprefix("ref:").strip()
    git(repo.path, "symbolic-ref", "HEAD", branch)  # the same HEAD, in a new file
    age(repo.path)
    poison(repo.path)
    assert show(repo.path) == POISON  # served by the listing's key
    new_stamps = stamps_of_newest(repo.path)
    assert new_stamps is not None
    assert new_stamps != old_stamps
    assert show(repo.path) == POISON  # and now by its stamps
    assert before != POISON


def test_flags_and_gto_environment_are_part_of_the_key(repo: ScratchRepo) -> None:
    show(repo.path)
    poison(repo.path)
    assert show(repo.path, "--sort", "semver") != POISON
    assert show(repo.path, "m") != POISON
    assert show(repo.path, env={"GTO_STAGES": '["prod"]'}) != POISON
    assert show(repo.path) == POISON
    assert show(repo.path, "--vs", "-1") == show(repo.path, "--vs", "-1", cache=False)


def test_a_code_change_misses(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    module = package / "sub" / "m.py"
    module.write_text("x = 1\n")
    before = code_fingerprint(str(package))
    os.utime(module, ns=(1, 1))
    assert code_fingerprint(str(package)) != before
    module.write_text("x = 22\n")
    assert code_fingerprint(str(package)) not in (before,)


def test_a_read_with_a_missing_blob_is_not_stored(repo: ScratchRepo) -> None:
    """A blobless clone lacks artifacts.yaml blobs: the answer may change when they arrive."""
    blob = git(repo.path, "rev-parse", "HEAD:artifacts.yaml")
    (repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    assert show(repo.path) == show(repo.path, cache=False)
    assert ResultCache.open(str(repo.path / ".git")).entries == []


def test_a_tag_whose_object_is_missing_is_refused_and_nothing_is_stored(
    repo: ScratchRepo,
) -> None:
    (repo.path / ".git" / "refs" / "tags" / "m@v3.0.0").write_text("1234567890" * 4 + "\n")
    with pytest.raises(subprocess.CalledProcessError) as raised:
        show(repo.path)
    assert raised.value.stderr.splitlines() == [
        "gitstage: error: tag m@v3.0.0 points to object 1234567890123456789012345678901234567890,"
        " which is missing"
    ]
    assert ResultCache.open(str(repo.path / ".git")).entries == []


def test_disabled_and_damaged_caches(repo: ScratchRepo) -> None:
    path = Path(result_path(str(repo.path / ".git")))
    expected = show(repo.path, env={result_cache.RESULT_ENV: "off"})
    assert not path.exists()
    assert show(repo.path) == expected
    path.write_bytes(path.read_bytes()[:-3])
    assert ResultCache.open(str(repo.path / ".git")).entries == []
    assert show(repo.path) == expected
    assert len(ResultCache.open(str(repo.path / ".git")).entries) == 1


def test_errors_are_reported_by_click_in_one_line(tmp_path: Path) -> None:
    environ = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    proc = subprocess.run(
        [sys.executable, "-m", "gitstage", "show", "--json", "-r", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("gitstage: error: not a git repository")
    assert len(proc.stderr.splitlines()) == 1


# -- the fast path parses what click parses ------------------------------------------------------


def click_request(argv: list[str]) -> ShowRequest | None:
    params = show_command.make_context("show", argv[1:]).params
    if not params["as_json"]:
        return None
    return ShowRequest(
        params["name"],
        params["repo"],
        params["registered_only"],
        params["deprecated"],
        params["assignments_per_version"],
        params["versions_per_stage"],
        params["sort"],
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "--json"],
        ["show", "--json", "-r", "/x"],
        ["show", "-r", "/x", "--json", "m#prod"],
        ["show", "m@latest", "--json", "--repo=/y", "--repo", "/z"],
        ["show", "--json", "--ro", "-d", "--av", "2", "--vs", "-1", "--sort", "semver"],
        ["show", "--json", "--registered-only", "--deprecated", "--sort=timestamp"],
        ["show", "--json", "--assignments-per-version=0", "--versions-per-stage", "3"],
        ["show", "--json", "--vs", " 4", "-d", "-d", "team/n"],
        ["show", "m"],
    ],
)
def test_fast_parsing_agrees_with_click(argv: list[str]) -> None:
    assert parse_argv(argv) == click_request(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "--json", "--help"],
        ["show", "--json", "-r/x"],
        ["show", "--json", "--plain"],
        ["show", "--json", "--sort", "Semver"],
        ["show", "--json", "--vs", "many"],
        ["show", "--json", "--vs"],
        ["show", "--json", "a", "b"],
        ["show", "--json", "--", "m"],
        ["history", "--json"],
        ["--version"],
        [],
    ],
)
def test_anything_else_is_left_to_click(argv: list[str]) -> None:
    assert parse_argv(argv) is None

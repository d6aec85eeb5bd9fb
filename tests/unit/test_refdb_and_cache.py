"""The file-based ref reader against libgit2's listing, and the persistent object cache:
cold and warm reads agree, and a corrupt, unwritable, disabled or concurrently written cache
never changes an answer."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pygit2
import pytest

from gitstage import api
from gitstage.adapters.git import object_cache, refdb
from gitstage.adapters.git.object_cache import ObjectCache, cache_path
from gitstage.adapters.git.reader import read_registry
from gitstage.adapters.git.refdb import RefDb, locate
from gitstage.adapters.git.repository import RepositoryError
from tests.support.scratch import ScratchRepo, When
from tests.unit.conftest import git


def libgit2_tags(path: Path) -> dict[str, str]:
    repo = pygit2.Repository(str(path))
    return {
        ref.name.removeprefix("refs/tags/"): str(ref.target)
        for ref in repo.listall_reference_objects()
        if ref.name.startswith("refs/tags/") and isinstance(ref.target, pygit2.Oid)
    }


@pytest.fixture
def repo(scratch: ScratchRepo) -> ScratchRepo:
    """m@v1.0.0 and m@v2.0.0 with prod moved between them; artifacts.yaml at HEAD."""
    c1 = scratch.commit({"a": "1"}, When(0))
    c2 = scratch.commit({"artifacts.yaml": "m:\n  type: model\n  path: m.pkl\n"}, When(1))
    scratch.tag("m@v1.0.0", c1, When(2))
    scratch.tag("m@v2.0.0", c2, When(3))
    scratch.tag("m#prod#1", c2, When(4))
    scratch.tag("m#prod#2", c1, When(5))
    scratch.tag("team/n@v0.1.0", c1, When(6))
    return scratch


def cache_file(scratch: ScratchRepo) -> Path:
    return Path(cache_path(str(scratch.path / ".git")))


def everything(path: Path) -> str:
    """Every view gitstage prints for a repository, as one string."""
    registry = api.show(path, deprecated=True, sort="semver")
    versions = {name: api.show(path, name, versions_per_stage=-1) for name in registry}
    return json.dumps([api.show(path), registry, versions])


# -- refs ----------------------------------------------------------------------------------------


def test_refs_match_libgit2_with_packed_loose_nested_and_odd_refs(repo: ScratchRepo) -> None:
    head = str(repo.repo.head.target)
    repo.lightweight("light", head)
    git(repo.path, "pack-refs", "--all")
    repo.tag("late#dev", head, When(7))  # loose, after packing
    git(repo.path, "tag", "-f", "-a", "-m", "moved", "m#prod#2", head)  # loose overrides packed
    git(repo.path, "tag", "-d", "team/n@v0.1.0")  # deleted from packed-refs
    git(repo.path, "symbolic-ref", "refs/tags/symbolic", "refs/heads/main")
    (repo.path / ".git" / "refs" / "tags" / "stale.lock").write_text(head + "\n")
    dirs = locate(repo.path)
    assert dirs is not None
    tags = RefDb(dirs).tags()
    assert tags == libgit2_tags(repo.path)
    assert "symbolic" not in tags
    assert "team/n@v0.1.0" not in tags
    assert tags["m#prod#2"] == git(repo.path, "rev-parse", "refs/tags/m#prod#2")


@pytest.mark.parametrize("slice_chars", [1, 60, 97, 1 << 20])
def test_packed_refs_read_in_slices_lose_and_repeat_no_ref(
    repo: ScratchRepo, slice_chars: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = str(repo.repo.head.target)
    for number in range(40):
        repo.tag(f"m{number}#dev#{number}", head, When(10 + number))
    git(repo.path, "pack-refs", "--all")
    monkeypatch.setattr(refdb, "_SLICE_CHARS", slice_chars)
    dirs = locate(repo.path)
    assert dirs is not None
    assert RefDb(dirs).tags() == libgit2_tags(repo.path)


@pytest.mark.parametrize("packed", [False, True])
def test_head_is_resolved_loose_packed_detached_and_unborn(tmp_path: Path, packed: bool) -> None:
    scratch = ScratchRepo(tmp_path / "r")
    dirs = locate(scratch.path)
    assert dirs is not None
    assert RefDb(dirs).resolve("HEAD") is None  # unborn
    first = scratch.commit({"a": "1"}, When(0))
    second = scratch.commit({"a": "2"}, When(1))
    if packed:
        git(scratch.path, "pack-refs", "--all")
    assert RefDb(dirs).resolve("HEAD") == second
    git(scratch.path, "checkout", "-q", "--detach", first)
    assert RefDb(dirs).resolve("HEAD") == first


def test_locate_walks_up_follows_worktrees_and_leaves_bare_repositories(
    repo: ScratchRepo, tmp_path: Path
) -> None:
    (repo.path / "deep" / "er").mkdir(parents=True)
    found = locate(repo.path / "deep" / "er")
    assert found is not None
    assert (found.workdir, found.git_dir) == (str(repo.path), str(repo.path / ".git"))
    git(repo.path, "worktree", "add", "-q", str(tmp_path / "wt"))
    worktree = locate(tmp_path / "wt")
    assert worktree is not None
    assert worktree.common_dir == str(repo.path / ".git")
    assert RefDb(worktree).tags() == libgit2_tags(repo.path)
    assert everything(tmp_path / "wt") == everything(repo.path)
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(tmp_path / "bare.git"))
    assert locate(tmp_path / "bare.git") is None  # left to libgit2
    assert everything(tmp_path / "bare.git") == everything(repo.path)
    assert locate(tmp_path / "nowhere") is None


# -- the object cache ----------------------------------------------------------------------------


def test_warm_read_equals_cold_read_and_needs_no_object_reads(
    repo: ScratchRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(object_cache.DISABLE_ENV, "off")
    uncached = everything(repo.path)
    assert not cache_file(repo).exists()
    monkeypatch.delenv(object_cache.DISABLE_ENV)
    assert everything(repo.path) == uncached
    assert cache_file(repo).is_file()

    def no_git(*_: object) -> None:
        raise AssertionError("a warm read opened the repository with libgit2")

    monkeypatch.setattr("gitstage.adapters.git.reader.open_repository", no_git)
    assert everything(repo.path) == uncached


def test_new_moved_and_deleted_tags_are_seen_through_the_cache(repo: ScratchRepo) -> None:
    before = everything(repo.path)
    head = str(repo.repo.head.target)
    repo.tag("m#dev", head, When(8))
    git(repo.path, "tag", "-f", "-a", "-m", "moved", "m#prod#2", head)
    repo.delete_tag("team/n@v0.1.0")
    after = everything(repo.path)
    assert after != before
    os.environ[object_cache.DISABLE_ENV] = "off"
    try:
        assert everything(repo.path) == after
    finally:
        del os.environ[object_cache.DISABLE_ENV]
    tables = object_cache.decode(cache_file(repo).read_bytes())
    assert tables is not None
    assert set(tables["tags"]) == set(libgit2_tags(repo.path).values())  # pruned to the refs


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-10] + bytes(10),  # corrupt payload: CRC mismatch
        lambda data: b"not a cache at all",
        lambda data: b"",
        lambda data: object_cache.MAGIC + b"\x00\x00\x00\x00" + b"\xff\x00garbage",
    ],
    ids=["truncated", "corrupt", "foreign", "empty", "bad-marshal"],
)
def test_a_damaged_cache_is_ignored_and_rebuilt(repo: ScratchRepo, damage: object) -> None:
    expected = everything(repo.path)
    path = cache_file(repo)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert object_cache.decode(path.read_bytes()) is None
    assert everything(repo.path) == expected
    assert object_cache.decode(path.read_bytes()) is not None  # rewritten whole


def test_an_unwritable_cache_location_reads_without_a_cache(repo: ScratchRepo) -> None:
    expected_dir = cache_file(repo).parent
    expected_dir.parent.joinpath("gitstage").write_text("a file where the directory would be")
    with_cache_blocked = everything(repo.path)
    assert everything(repo.path) == with_cache_blocked
    assert expected_dir.is_file()
    os.environ[object_cache.DISABLE_ENV] = "off"
    try:
        assert everything(repo.path) == with_cache_blocked
    finally:
        del os.environ[object_cache.DISABLE_ENV]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_a_read_only_git_dir_gets_no_cache(repo: ScratchRepo) -> None:
    git_dir = repo.path / ".git"
    expected = everything(repo.path)
    cache_file(repo).unlink()
    cache_file(repo).parent.rmdir()
    git_dir.chmod(0o555)
    try:
        assert everything(repo.path) == expected
        assert not cache_file(repo).parent.exists()
    finally:
        git_dir.chmod(0o755)


def test_disabled_cache_is_neither_read_nor_written(
    repo: ScratchRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(object_cache.DISABLE_ENV, "0")
    read_registry(repo.path)
    assert not cache_file(repo).exists()


def test_concurrent_writers_leave_one_whole_file(repo: ScratchRepo) -> None:
    path = str(cache_file(repo))
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            for round_ in range(20):
                cache = ObjectCache(path)
                cache.put("tags", f"{number:040x}", ("t", "n", "e", round_, 0, "m"))
                assert cache.save()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    tables = object_cache.decode(Path(path).read_bytes())
    assert tables is not None
    assert len(tables["tags"]) == 1
    assert [p.name for p in Path(path).parent.iterdir()] == [Path(path).name]


def test_rows_marshal_cannot_store_are_not_cached(tmp_path: Path) -> None:
    cache = ObjectCache(str(tmp_path / "c"))
    cache.put("indexes", "blob", {"m": ("model", None, True, [], "", object())})
    assert cache.get("indexes", "blob") == (False, None)
    assert not cache.changed


def test_a_tag_whose_object_is_missing_is_an_error_and_not_remembered(repo: ScratchRepo) -> None:
    expected = everything(repo.path)
    missing = "1234567890" * 4
    loose = repo.path / ".git" / "refs" / "tags" / "m@v3.0.0"
    loose.write_text(missing + "\n")
    with pytest.raises(RepositoryError, match=f"tag m@v3.0.0 points to object {missing}"):
        read_registry(repo.path)
    tables = object_cache.decode(cache_file(repo).read_bytes())
    assert tables is not None
    assert missing not in tables["tags"]
    loose.unlink()
    assert everything(repo.path) == expected

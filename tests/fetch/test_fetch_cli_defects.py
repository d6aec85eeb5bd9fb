"""`gitstage fetch` regressions: moved refs and the cache, limits on a cache hit, sources that are
not repositories, non-finite timeouts, an empty output path, and damaged cache entries.

Every repository here is local and built per test (two commits at most): no server is needed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from gitstage.domain.fetch.errors import BadInputError
from gitstage.domain.fetch.limits import FetchLimits
from gitstage.domain.fetch.manifest import MANIFEST_FILE
from gitstage.fetching import FetchSpec, fetch
from tests.fetch.test_fetch import assert_one_line_error, manifest_of
from tests.support.git import run_git

FIRST = b"one"
SECOND = b"second"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Repo R: `churn` (models/churn.pkl) registered as v1.0.0, on branch main."""
    path = tmp_path / "R"
    run_git(tmp_path, "init", "-q", "-b", "main", path.name)
    (path / "models").mkdir()
    (path / "models" / "churn.pkl").write_bytes(FIRST)
    (path / "artifacts.yaml").write_text("churn: {type: model, path: models/churn.pkl}\n")
    commit(path)
    run_git(path, "tag", "-a", "churn@v1.0.0", "-m", "Registering artifact churn version v1.0.0")
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("GITSTAGE_CACHE_DIR", str(path))
    return path


def commit(repo: Path) -> str:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "content")
    return run_git(repo, "rev-parse", "HEAD")


def head(repo: Path) -> str:
    return run_git(repo, "rev-parse", "HEAD")


def fetch_cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, ["fetch", *args], env=env, catch_exceptions=False)


def cache_entry(cache: Path, commit: str) -> Path:
    (entry,) = (cache / commit).iterdir()
    return entry


class TestMovedRefs:
    @pytest.mark.parametrize("rev", ["HEAD", "main"])
    def test_a_moved_ref_is_fetched_at_its_new_commit(
        self, repo: Path, cache: Path, tmp_path: Path, rev: str
    ) -> None:
        assert (
            fetch_cli("churn", "-r", str(repo), "--rev", rev, "-o", str(tmp_path / "a")).exit_code
            == 0
        )
        (repo / "models" / "churn.pkl").write_bytes(SECOND)
        moved = commit(repo)
        result = fetch_cli("churn", "-r", str(repo), "--rev", rev, "-o", str(tmp_path / "b"))
        assert result.exit_code == 0, result.stderr
        assert f"fetched churn at {moved[:12]}" in result.stderr
        assert (tmp_path / "b").read_bytes() == SECOND
        assert (tmp_path / "a").read_bytes() == FIRST
        assert not (cache / rev).exists()  # keyed by commit, never by the ref's name

    def test_a_moved_branch_updates_a_managed_dest(self, repo: Path, tmp_path: Path) -> None:
        dest = tmp_path / "d"
        assert (
            fetch_cli("churn", "-r", str(repo), "--rev", "main", "--dest", str(dest)).exit_code == 0
        )
        (repo / "models" / "churn.pkl").write_bytes(SECOND)
        moved = commit(repo)
        result = fetch_cli("churn", "-r", str(repo), "--rev", "main", "--dest", str(dest))
        assert result.exit_code == 0, result.stderr
        assert (dest / "churn.pkl").read_bytes() == SECOND
        assert manifest_of(dest)["commit"] == moved

    def test_a_commit_is_served_from_the_cache_without_the_repository(
        self, repo: Path, cache: Path, tmp_path: Path
    ) -> None:
        sha = head(repo)
        assert fetch_cli("churn", "-r", str(repo), "--rev", "HEAD").exit_code == 0
        repo.rename(tmp_path / "gone")  # a cache hit must not need git at all
        result = fetch_cli("churn", "-r", str(repo), "--rev", sha, "-o", str(tmp_path / "c"))
        assert result.exit_code == 0, result.stderr
        assert "is already in" in result.stderr
        assert (tmp_path / "c").read_bytes() == FIRST
        assert cache_entry(cache, sha).is_dir()


class TestSizeLimitOnACacheHit:
    def test_a_cached_artifact_over_the_limit_is_refused(
        self, repo: Path, cache: Path, tmp_path: Path
    ) -> None:
        assert fetch_cli("churn", "-r", str(repo), "-o", str(tmp_path / "c1")).exit_code == 0
        result = fetch_cli("churn", "-r", str(repo), "--max-bytes", "1", "-o", str(tmp_path / "c2"))
        assert_one_line_error(result, 6, "size limit of 1 bytes exceeded")
        assert not (tmp_path / "c2").exists()
        assert (cache_entry(cache, head(repo)) / "churn.pkl").read_bytes() == FIRST  # kept

    def test_a_cached_artifact_within_the_limit_is_served(
        self, repo: Path, cache: Path, tmp_path: Path
    ) -> None:
        assert fetch_cli("churn", "-r", str(repo)).exit_code == 0
        limit = str(len(FIRST))
        result = fetch_cli(
            "churn", "-r", str(repo), "--max-bytes", limit, "-o", str(tmp_path / "c")
        )
        assert result.exit_code == 0, result.stderr
        assert "is already in" in result.stderr
        assert (tmp_path / "c").read_bytes() == FIRST


class TestNotARepository:
    @pytest.fixture(params=["plain-dir", "file", "missing"])
    def source(self, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
        path = tmp_path / "notgit"
        if request.param == "plain-dir":
            path.mkdir()
            (path / "x.txt").write_text("x\n")
        elif request.param == "file":
            path.write_text("not a repository\n")
        return path

    def test_by_registry_selection(self, source: Path, cache: Path) -> None:
        result = fetch_cli("churn", "-r", str(source))
        assert_one_line_error(result, 3, f"not a git repository: {source}")
        assert not cache.exists()

    def test_at_a_revision(self, source: Path, cache: Path) -> None:
        result = fetch_cli("churn", "-r", str(source), "--rev", "HEAD")
        assert_one_line_error(result, 3, f"repository {source} ")
        assert not cache.exists()

    def test_a_broken_artifacts_yaml_is_one_line(self, repo: Path, cache: Path) -> None:
        (repo / "artifacts.yaml").write_text("churn: [oops\n")
        commit(repo)
        assert_one_line_error(fetch_cli("churn", "-r", str(repo)), 2, "artifacts.yaml")


class TestTimeouts:
    @pytest.mark.parametrize("option", ["--timeout", "--stall-timeout"])
    @pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "604801"])
    def test_non_finite_or_huge_seconds_are_usage_errors(
        self, repo: Path, cache: Path, option: str, value: str
    ) -> None:
        result = fetch_cli("churn", "-r", str(repo), option, value)
        assert_one_line_error(result, 2, f"Invalid value for '{option}'")
        assert not cache.exists()

    def test_from_the_environment_too(self, repo: Path, cache: Path) -> None:
        result = fetch_cli("churn", "-r", str(repo), env={"GITSTAGE_FETCH_TIMEOUT": "nan"})
        assert_one_line_error(result, 2, "GITSTAGE_FETCH_TIMEOUT")
        assert not cache.exists()

    def test_a_week_is_accepted(self, repo: Path, cache: Path) -> None:
        result = fetch_cli(
            "churn", "-r", str(repo), "--timeout", "604800", "--stall-timeout", "0.5"
        )
        assert result.exit_code == 0, result.stderr

    @pytest.mark.parametrize("seconds", [math.nan, math.inf, 1e308])
    def test_the_python_api_refuses_them(self, repo: Path, tmp_path: Path, seconds: float) -> None:
        spec = FetchSpec(
            str(repo), "HEAD", "churn", tmp_path / "d", limits=FetchLimits(None, seconds)
        )
        with pytest.raises(BadInputError, match="timeout"):
            fetch(spec)
        assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("option", ["-o", "--out", "--dest"])
def test_an_empty_output_path_is_a_usage_error(
    repo: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = fetch_cli("churn", "-r", str(repo), option, "")
    assert_one_line_error(result, 2, "the path is empty")
    assert list(work.iterdir()) == []
    assert not cache.exists()


class TestDamagedCacheEntry:
    def damage_manifest(self, entry: Path) -> None:
        (entry / MANIFEST_FILE).write_text("{not json")

    def manifest_outside(self, entry: Path) -> None:
        manifest = json.loads((entry / MANIFEST_FILE).read_text())
        manifest["files"][0]["path"] = "../../elsewhere"
        (entry / MANIFEST_FILE).write_text(json.dumps(manifest))

    def stray_file_without_manifest(self, entry: Path) -> None:
        (entry / MANIFEST_FILE).unlink()
        (entry / "stray.txt").write_text("?\n")

    def damaged_journal(self, entry: Path) -> None:
        (entry / ".gitstage-journal").write_text("[oops")

    @pytest.mark.parametrize(
        "damage",
        ["damage_manifest", "manifest_outside", "stray_file_without_manifest", "damaged_journal"],
    )
    def test_is_discarded_and_fetched_again(
        self, repo: Path, cache: Path, tmp_path: Path, damage: str
    ) -> None:
        assert fetch_cli("churn", "-r", str(repo)).exit_code == 0
        entry = cache_entry(cache, head(repo))
        (entry / "churn.pkl").write_bytes(b"bad")  # same size: only the manifest could vouch
        getattr(self, damage)(entry)
        result = fetch_cli("churn", "-r", str(repo), "-o", str(tmp_path / "c"))
        assert result.exit_code == 0, result.stderr
        assert "fetched churn" in result.stderr  # a miss, not a hit
        assert (tmp_path / "c").read_bytes() == FIRST
        assert sorted(p.name for p in entry.iterdir()) == [MANIFEST_FILE, "churn.pkl"]
        assert manifest_of(entry)["commit"] == head(repo)
        again = fetch_cli("churn", "-r", str(repo))
        assert "is already in" in again.stderr

    def test_a_damaged_manifest_in_a_managed_dest_is_still_refused(
        self, repo: Path, tmp_path: Path
    ) -> None:
        dest = tmp_path / "d"
        assert fetch_cli("churn", "-r", str(repo), "--dest", str(dest)).exit_code == 0
        (dest / MANIFEST_FILE).write_text("{not json")
        result = fetch_cli("churn", "-r", str(repo), "--dest", str(dest))
        assert_one_line_error(result, 2, "is not a gitstage manifest")
        assert (dest / "churn.pkl").read_bytes() == FIRST  # nothing of the user's is touched

"""`gitstage.api.fetch` on a URL: the registry is read through a persistent mirror over HTTP."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitstage import api
from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror.remote_mirror import MirrorError, RemoteMirror
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.support.fast_import import Person
from tests.support.git import run_git


def git(cwd: Path, *args: str, date: int = 1_700_000_000) -> str:
    return run_git(cwd, *args, person=Person("a", "a@x"), date=date, base_env={"HOME": str(cwd)})


@pytest.fixture
def served(tmp_path: Path) -> tuple[GitHttpServer, Path, dict[str, str]]:
    root = tmp_path / "srv"
    root.mkdir()
    bare = root / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "artifacts.yaml").write_text("churn:\n  path: model.txt\n")
    commits = {}
    for n, weights in enumerate(["one", "two"], start=1):
        (work / "model.txt").write_text(weights)
        git(work, "add", "-A")
        git(work, "commit", "-qm", weights, date=1_700_000_000 + n)
        commits[weights] = git(work, "rev-parse", "HEAD")
        git(work, "tag", "-a", f"churn@v{n}.0.0", "-m", "r", date=1_700_000_100 + n)
        git(work, "tag", "-a", f"churn#prod#{n}", "-m", "a", date=1_700_000_200 + n)
    git(work, "push", "-q", str(bare), "main", "--tags")
    server = GitHttpServer(root, auth=BasicAuth("alice", "pw-123")).start()
    yield server, tmp_path, commits
    server.stop()


def test_fetch_by_stage_from_a_url(
    served: tuple[GitHttpServer, Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, tmp, _ = served
    monkeypatch.setenv("GITSTAGE_CACHE_DIR", str(tmp / "cache"))
    monkeypatch.setenv("GITSTAGE_GIT_USERNAME", "alice")
    monkeypatch.setenv("GITSTAGE_GIT_PASSWORD", "pw-123")
    path = api.fetch("churn", repo=server.url("registry.git"), stage="prod", dest=tmp / "out")
    assert path.read_text() == "two"


def test_mirror_lists_refs_once_when_idle_and_hides_secrets(
    served: tuple[GitHttpServer, Path, dict[str, str]],
) -> None:
    server, tmp, commits = served
    mirror = RemoteMirror(
        server.url("registry.git"), GitCredentials("alice", "pw-123"), tmp / "mirrors"
    )
    assert mirror.sync().changed
    assert mirror.registry().state.artifacts["churn"].versions[0].commit == commits["one"]
    requests = server.stats.requests
    assert not mirror.sync().changed
    assert mirror.counters.fetches == 1
    # One ls-remote: the 401 challenge, the authenticated ref advertisement, the v2 ls-refs.
    assert server.stats.requests - requests <= 3
    wrong = RemoteMirror(
        server.url("registry.git"), GitCredentials("alice", "nope-secret"), tmp / "mirrors"
    )
    with pytest.raises(MirrorError) as failed:
        wrong.sync()
    assert failed.value.reason == "AuthenticationFailed"
    assert "nope-secret" not in str(failed.value)

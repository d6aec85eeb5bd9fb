"""Commits and artifacts.yaml lookups read by `git cat-file` (commit_objects.py) give exactly
libgit2's rows, or are left to libgit2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2
import pytest

from gitstage.adapters.git.commit_objects import CommitRead, parse_commit_body, read_commits
from gitstage.adapters.git.object_cache import Row
from tests.conformance.history import random_history, write

INDEX = "artifacts.yaml"
SIGNATURE = "a b <e> 1700000000 +0200"
# Commit texts after `tree X\n`: each is read as libgit2 reads it, or left to it.
ODD_COMMITS = (
    f"author {SIGNATURE}\ncommitter {SIGNATURE}\n\nplain\n",
    f"author {SIGNATURE}\ncommitter c <d> 1700000001 -0530\n\n",
    f"author {SIGNATURE}\ncommitter {SIGNATURE}\nencoding ISO-8859-1\n\nencoded\n",
    f"author {SIGNATURE}\ncommitter {SIGNATURE}\ngpgsig -----BEGIN\n -----END\n\nsigned\n",
    f"author {SIGNATURE}\ncommitter {SIGNATURE}\n\n\nleading newline\n",
    f"author {SIGNATURE}\ncommitter {SIGNATURE}\n\nN\0UL\n",
    f"author {SIGNATURE}\ncommitter a <e> 1700000000 +9959\n\nzone\n",
    f"author  a <e> 1 +0000\ncommitter {SIGNATURE}\n\nuntrimmed\n",
    f"author {SIGNATURE}\nauthor x <y> 1 +0000\ncommitter {SIGNATURE}\n\ntwo authors\n",
    f"author {SIGNATURE}\ncommitter {SIGNATURE}\n\n\xff\n",
    f"author é <ü> 1 +0000\ncommitter {SIGNATURE}\n\nünï\r\n",
)
DEFERRED = {2, 3, 4, 5, 6, 7, 8, 9}


def git(path: Path, *args: str, data: bytes | None = None) -> str:
    command = ["git", "-C", str(path), *args]
    done = subprocess.run(command, input=data, capture_output=True, check=True)
    return done.stdout.decode().strip()


def libgit2_row(repo: pygit2.Repository, sha: str) -> Row:
    commit = repo.get(sha).peel(pygit2.Commit)
    a, c = commit.author, commit.committer
    time, offset = commit.commit_time, commit.commit_time_offset * 60
    return (str(commit.id), time, offset, commit.message, a.name, a.email, c.name, c.email)


def has_blob(repo: pygit2.Repository, sha: str, path: str) -> bool:
    try:
        return isinstance(repo.get(sha).peel(pygit2.Commit).tree[path], pygit2.Blob)
    except KeyError:
        return False


@pytest.mark.parametrize("seed", range(4))
def test_commits_and_lookups_read_as_libgit2_reads_them(tmp_path: Path, seed: int) -> None:
    path = write(random_history(seed), tmp_path / "registry").path
    shas = git(path, "rev-list", "--all").split()
    scan = read_commits(str(path / ".git"), str(path / ".git"), shas, INDEX)
    repo = pygit2.Repository(str(path))
    assert set(scan.commits) == set(shas)  # git writes the plain form
    for sha, row in scan.commits.items():
        assert row == libgit2_row(repo, sha), sha
    # Every commit without artifacts.yaml is answered (None); those with one are libgit2's.
    without = {f"{sha}:{INDEX}" for sha in shas if not has_blob(repo, sha, INDEX)}
    assert set(scan.trees) == without
    assert len(without) < len(shas)


def test_odd_commits_parse_as_libgit2_reads_them_or_are_left_to_it(tmp_path: Path) -> None:
    path = write(random_history(1), tmp_path / "registry").path
    tree = git(path, "rev-parse", "HEAD^{tree}")
    repo = pygit2.Repository(str(path))
    for number, text in enumerate(ODD_COMMITS):
        body = f"tree {tree}\n{text}".encode().replace("\xff".encode(), b"\xff")
        sha = git(path, "hash-object", "-t", "commit", "-w", "--stdin", "--literally", data=body)
        parsed = parse_commit_body(sha, body)
        assert (parsed is None) == (number in DEFERRED), text
        if parsed is not None:
            assert parsed == (libgit2_row(repo, sha), tree), text


def test_an_index_path_that_is_no_blob_is_answered_and_a_blob_left_to_libgit2(
    tmp_path: Path,
) -> None:
    path = write(random_history(1), tmp_path / "registry").path
    head = git(path, "rev-parse", "HEAD")
    blob = git(path, "hash-object", "-w", "--stdin", data=b"x: {}\n")
    entries = {
        "dir": f"040000 tree {git(path, 'rev-parse', 'HEAD^{tree}')}\t{INDEX}\n",
        "submodule": f"160000 commit {head}\t{INDEX}\n",
        "blob": f"100644 blob {blob}\t{INDEX}\n",
        "symlink": f"120000 blob {blob}\t{INDEX}\n",
        "absent": f"100644 blob {blob}\tother.yaml\n",
    }
    commits = {}
    for name, entry in entries.items():
        tree = git(path, "mktree", data=entry.encode())
        commits[name] = git(path, "commit-tree", tree, "-m", name)
    scan = read_commits(str(path / ".git"), str(path / ".git"), list(commits.values()), INDEX)
    answered = {name for name, sha in commits.items() if f"{sha}:{INDEX}" in scan.trees}
    assert answered == {"dir", "submodule", "absent"}
    repo = pygit2.Repository(str(path))
    assert {name for name, sha in commits.items() if not has_blob(repo, sha, INDEX)} == answered


def test_nested_paths_missing_objects_and_a_failing_git_are_left_to_libgit2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(random_history(2), tmp_path / "registry").path
    git_dir = str(path / ".git")
    shas = git(path, "rev-list", "--all").split()[:5]
    nested = read_commits(git_dir, git_dir, shas, "models/artifacts.yaml")
    assert set(nested.commits) == set(shas)
    assert nested.trees == {}
    missing = read_commits(git_dir, git_dir, ["0123456789" * 4, *shas], INDEX)
    assert set(missing.commits) == set(shas)
    elsewhere = tmp_path / "not-a-repository"
    elsewhere.mkdir()
    (elsewhere / "config").write_text("")
    assert read_commits(str(elsewhere), str(elsewhere), shas, INDEX).commits == {}
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(tmp_path))
    assert read_commits(git_dir, git_dir, shas, INDEX).commits == {}


def test_tags_among_the_commits_and_a_stopped_read_are_left_to_libgit2(tmp_path: Path) -> None:
    """A version's commit may be a tag (a tag of a tag): git's answers stay paired with the
    requests around it; a read stopped early answers a part, or nothing."""
    path = write(random_history(3), tmp_path / "registry").path
    git_dir = str(path / ".git")
    shas = git(path, "rev-list", "--all").split()[:6]
    listing = git(path, "for-each-ref", "--format=%(objecttype) %(objectname)", "refs/tags")
    tag = next(line.split()[1] for line in listing.splitlines() if line.startswith("tag "))
    asked = [*shas[:3], tag, *shas[3:]]
    scan = read_commits(git_dir, git_dir, asked, INDEX)
    assert set(scan.commits) == set(shas)
    repo = pygit2.Repository(str(path))
    assert {key.partition(":")[0] for key in scan.trees} == {
        sha for sha in shas if not has_blob(repo, sha, INDEX)
    }
    read = CommitRead.start(git_dir, git_dir, asked, INDEX)
    assert read is not None
    read.close()
    read.close()  # again: nothing to do
    assert set(read.result().commits) <= set(shas)

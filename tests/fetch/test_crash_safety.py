"""The fetch destination after a kill at any step of an install, under concurrent writers, and
with a hostile or foreign content: always the complete previous artifact, the complete new one,
or nothing vouched for, and the next fetch converges; files gitstage did not write stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gitstage.adapters.fetch.workdir import sweep_stale
from gitstage.domain.fetch.manifest import MANIFEST_FILE
from gitstage.fetching import FetchSpec, fetch
from tests.fetch.conftest import Registry

pytestmark = pytest.mark.fault  # the hardening issue's fault-injection suite

# Runs `gitstage fetch` and dies (os._exit, no cleanup, as SIGKILL) at the N-th file operation
# of the install: every rename, replace, unlink and removal counts.
CRASHING_FETCH = """
import os, sys
from pathlib import Path
from gitstage.adapters.fetch import staging
limit, calls, counting = int(sys.argv[1]), [0], [False]
def crashing(operation):
    def run(*args, **kwargs):
        if counting[0]:
            calls[0] += 1
            if calls[0] == limit:
                os._exit(137)
        return operation(*args, **kwargs)
    return run
for name in ("rename", "replace", "unlink"):
    setattr(Path, name, crashing(getattr(Path, name)))
staging.remove_entry = crashing(staging.remove_entry)
install = staging.Staging.install
def counted_install(self, manifest):
    counting[0] = True
    install(self, manifest)
staging.Staging.install = counted_install
from gitstage.cli.main import cli
cli(sys.argv[2:])
"""


def fetch_into(registry: Registry, artifact: str, dest: Path) -> None:
    fetch(FetchSpec(str(registry.project.path), registry.local_commit, artifact, dest))


def gitstage_fetch(registry: Registry, artifact: str, dest: Path) -> list[str]:
    return [
        "fetch",
        "--repo",
        str(registry.project.path),
        "--rev",
        registry.local_commit,
        "--artifact",
        artifact,
        "--dest",
        str(dest),
    ]


def tree(dest: Path) -> dict[str, bytes]:
    """Every file below DEST (symlinks as their target), by relative path."""
    files = {}
    for path in sorted(dest.rglob("*")):
        relative = path.relative_to(dest).as_posix()
        if path.is_symlink():
            files[relative] = os.readlink(path).encode()
        elif path.is_file():
            files[relative] = path.read_bytes()
    return files


def vouched(dest: Path) -> str | None:
    """The artifact DEST's manifest vouches for, checking every file it lists; None if none."""
    manifest_path = dest / MANIFEST_FILE
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    for record in manifest["files"]:
        assert (dest / record["path"]).stat().st_size == record["size"], record
    return str(manifest["artifact"])


def test_a_kill_at_any_step_of_an_install_into_an_existing_directory_converges(
    registry: Registry, tmp_path: Path
) -> None:
    """The emptyDir case: DEST is a directory that holds the previous artifact (bundle, a DVC
    directory) and the next fetch installs another (gitdir) in place."""
    reference = tmp_path / "reference"
    fetch_into(registry, "gitdir", reference)
    expected = tree(reference)
    crashed_at = []
    for step in range(1, 60):
        dest = tmp_path / f"model-{step}"
        dest.mkdir()
        fetch_into(registry, "bundle", dest)
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                CRASHING_FETCH,
                str(step),
                *gitstage_fetch(registry, "gitdir", dest),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode == 0:
            break
        assert run.returncode == 137, run.stderr
        crashed_at.append(step)
        assert vouched(dest) in (None, "bundle", "gitdir")  # never a manifest over missing files
        fetch_into(registry, "gitdir", dest)
        assert tree(dest) == expected, f"after a kill at step {step}"
    print(f"killed at {len(crashed_at)} steps of the install")
    assert len(crashed_at) >= 8, crashed_at  # every operation of the install was a kill point
    assert crashed_at == list(range(1, len(crashed_at) + 1))


def test_concurrent_fetches_into_one_destination_end_whole(
    registry: Registry, tmp_path: Path
) -> None:
    dest = tmp_path / "shared"
    dest.mkdir()
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "gitstage", *gitstage_fetch(registry, artifact, dest)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for artifact in ("bundle", "gitdir", "model", "bundle", "gitdir", "model")
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
    last = vouched(dest)
    reference = tmp_path / "reference"
    assert last is not None
    fetch_into(registry, last, reference)
    assert tree(dest) == tree(reference)  # the last writer's artifact, whole, and nothing else


def test_concurrent_fetches_into_the_cache_do_not_collide(
    registry: Registry, tmp_path: Path
) -> None:
    env = {**os.environ, "GITSTAGE_CACHE_DIR": str(tmp_path / "cache")}
    script = (
        "from gitstage import api; import sys;"
        f" print(api.fetch('model', repo={str(registry.project.path)!r},"
        f" rev={registry.local_commit!r}))"
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    paths = set()
    for writer in writers:
        stdout, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
        paths.add(stdout.strip())
    (path,) = paths
    assert Path(path).read_bytes() == registry.content["model"]


def test_a_manifest_naming_paths_outside_the_destination_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    for hostile in ("../outside.bin", "/etc/passwd", "a/../../b"):
        dest = tmp_path / f"d{abs(hash(hostile))}"
        fetch_into(registry, "bundle", dest)
        manifest = json.loads((dest / MANIFEST_FILE).read_text())
        manifest["files"].append({"path": hostile, "size": 1, "sha256": "0" * 64})
        (dest / MANIFEST_FILE).write_text(json.dumps(manifest))
        run = subprocess.run(
            [sys.executable, "-m", "gitstage", *gitstage_fetch(registry, "gitdir", dest)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 2
        (line,) = run.stderr.splitlines()
        assert (
            line
            == f"gitstage: error: {dest / MANIFEST_FILE} lists {hostile!r}, outside the destination"
        )
        assert (tmp_path.parent / "outside.bin").exists() is False


def test_files_gitstage_did_not_write_are_never_removed(registry: Registry, tmp_path: Path) -> None:
    dest = tmp_path / "shared"
    fetch_into(registry, "bundle", dest)
    (dest / "notes.txt").write_text("mine\n")
    fetch_into(registry, "gitdir", dest)
    assert (dest / "notes.txt").read_text() == "mine\n"
    assert vouched(dest) == "gitdir"
    assert not (dest / "weights.bin").exists()  # the previous artifact's own files are gone


def test_a_new_file_colliding_with_a_foreign_one_is_refused_and_nothing_changes(
    registry: Registry, tmp_path: Path
) -> None:
    dest = tmp_path / "shared"
    fetch_into(registry, "bundle", dest)
    reference = tmp_path / "reference"
    fetch_into(registry, "gitdir", reference)
    clash = sorted(p.name for p in reference.iterdir() if p.name != MANIFEST_FILE)[0]
    (dest / clash).write_text("mine\n")
    before = tree(dest)
    with pytest.raises(Exception, match="was not written by gitstage"):
        fetch_into(registry, "gitdir", dest)
    assert tree(dest) == before


def test_work_directories_of_killed_fetches_are_swept(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / "gitstage-fetch-4194303-abc"  # above pid_max's default: never alive
    stale.mkdir()
    (stale / "askpass").write_text("#!/bin/sh\necho secret\n")
    live = tmp_path / f"gitstage-fetch-{os.getpid()}-live"
    live.mkdir()
    fetch_into(registry, "model", tmp_path / "dest")
    assert not stale.exists()
    assert live.exists()  # a running fetch's directory is left alone
    assert sweep_stale(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("gitstage-fetch-")] == [
        live.name
    ]

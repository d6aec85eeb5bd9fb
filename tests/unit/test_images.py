"""gitstage.dev.images without buildah: the cache key follows exactly the build's inputs, the
build context is what .dockerignore lets through, a cached archive is reused as it is and a
partial one never is, the pause image (built with Go) is a valid docker archive whose binary
waits for SIGTERM, and failures are one line naming the step and the tail of its output."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gitstage.dev import images
from gitstage.dev.dockerignore import context_files
from gitstage.dev.images import (
    PAUSE_REFERENCE,
    PAUSE_SOURCE,
    REPO_ROOT,
    BuiltImage,
    ImageError,
    gitstage_image,
    image_key,
    pause_image,
    write_docker_archive,
)

CONTEXT_TOP = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty image cache; Go keeps its own build cache (which follows XDG_CACHE_HOME)."""
    go_cache = subprocess.run(["go", "env", "GOCACHE"], capture_output=True, text=True, check=True)
    monkeypatch.setenv("GOCACHE", go_cache.stdout.strip())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "gitstage" / "images"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The build's inputs copied from this checkout, plus files the build does not read."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in CONTEXT_TOP:
        shutil.copy2(REPO_ROOT / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO_ROOT / "operator", root / "operator", symlinks=True, ignore=ignore)
    shutil.copytree(REPO_ROOT / PAUSE_SOURCE, root / PAUSE_SOURCE)
    return root


@pytest.fixture
def only_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Makes PATH hold nothing but the given shell scripts (name=body)."""

    def install(**scripts: str) -> None:
        directory = tmp_path / "bin"
        directory.mkdir()
        for name, body in scripts.items():
            (directory / name).write_text(f"#!/bin/sh\n{body}\n")
            (directory / name).chmod(0o755)
        monkeypatch.setenv("PATH", str(directory))

    return install


def test_the_key_is_stable_and_covers_only_the_context(checkout: Path) -> None:
    assert image_key(checkout) == image_key(checkout) == image_key(REPO_ROOT)


Edit = Callable[[Path], object]
CHANGES: dict[str, Edit] = {
    "Dockerfile": lambda r: (r / "Dockerfile").write_text((r / "Dockerfile").read_text() + "\n#"),
    ".dockerignore": lambda r: (r / ".dockerignore").write_text("*\n!operator/\n"),
    "pyproject": lambda r: (r / "pyproject.toml").write_text("[project]\n"),
    "README": lambda r: (r / "README.md").write_text("# x\n"),
    "a module": lambda r: (r / "operator/gitstage/__init__.py").write_text("x = 1\n"),
    "a new module": lambda r: (r / "operator/gitstage/new.py").write_text(""),
    "a removed module": lambda r: (r / "operator/gitstage/fetching.py").unlink(),
    "a mode": lambda r: (r / "operator/gitstage/fetching.py").chmod(0o755),
    "a symlink": lambda r: (r / "operator/link").symlink_to("gitstage"),
}


def write(root: Path, name: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(b"\0")


UNREAD: dict[str, Edit] = {
    "tests": lambda r: write(r, "tests/test_x.py"),
    "bytecode": lambda r: write(r, "operator/gitstage/__pycache__/x.cpython-311.pyc"),
    "egg-info": lambda r: write(r, "operator/gitstage.egg-info/PKG-INFO"),
    "a touch": lambda r: os.utime(r / "operator/gitstage/fetching.py", (0, 0)),
}


@pytest.mark.parametrize("edit", CHANGES.values(), ids=CHANGES.keys())
def test_the_key_changes_with_every_input(checkout: Path, edit: Edit) -> None:
    before = image_key(checkout)
    edit(checkout)
    assert image_key(checkout) != before


@pytest.mark.parametrize("edit", UNREAD.values(), ids=UNREAD.keys())
def test_the_key_ignores_what_the_build_does_not_read(checkout: Path, edit: Edit) -> None:
    before = image_key(checkout)
    edit(checkout)
    assert image_key(checkout) == before


def test_the_key_changes_with_the_base_recipe_and_the_build_options(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = image_key(checkout)
    monkeypatch.setattr(images, "MMDEBSTRAP_OPTIONS", (*images.MMDEBSTRAP_OPTIONS, "--x"))
    base_changed = image_key(checkout)
    monkeypatch.undo()
    monkeypatch.setattr(images, "BUD_OPTIONS", (*images.BUD_OPTIONS, "--layers"))
    assert len({before, base_changed, image_key(checkout)}) == 3


def test_dockerignore_selects_as_docker_does(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(
        "# comment\n*\n!keep/\n**/__pycache__\n**/*.egg-info\n!docs/*.md\ndocs/secret.md\n"
        "!/?.log\n![ab].tmp\n"
    )
    for name in [
        "top.txt",
        "keep/a.py",
        "keep/deep/b.py",
        "keep/__pycache__/a.pyc",
        "keep/deep/__pycache__/b.pyc",
        "keep/x.egg-info/PKG-INFO",
        "docs/guide.md",
        "docs/secret.md",
        "docs/image.png",
        "docs/sub/nested.md",
        "1.log",
        "10.log",
        "a.tmp",
        "c.tmp",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    assert context_files(tmp_path) == [
        "1.log",
        "a.tmp",
        "docs/guide.md",
        "keep/a.py",
        "keep/deep/b.py",
    ]


def test_the_projects_context_is_pyproject_readme_and_the_package() -> None:
    files = context_files(REPO_ROOT)
    assert {"pyproject.toml", "README.md", "operator/gitstage/__init__.py"} <= set(files)
    assert {name.split("/")[0] for name in files} == {"pyproject.toml", "README.md", "operator"}
    assert not [name for name in files if "__pycache__" in name or ".egg-info" in name]


def read_archive(path: Path) -> tuple[list[dict[str, object]], dict[str, bytes]]:
    with tarfile.open(path) as archive:
        members = {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }
    return json.loads(members["manifest.json"]), members


def test_a_docker_archive_names_its_reference_and_digests(tmp_path: Path) -> None:
    target = tmp_path / "image.tar"
    files = {"bin/tool": (b"\x7fELF binary", 0o755), "etc/conf": (b"x=1\n", 0o644)}
    write_docker_archive(
        target, "localhost/x:1", files, entrypoint=["/bin/tool"], user="1:1", architecture="arm64"
    )
    (entry,), members = read_archive(target)
    assert entry["RepoTags"] == ["localhost/x:1"]
    config_bytes = members[str(entry["Config"])]
    assert str(entry["Config"]) == hashlib.sha256(config_bytes).hexdigest() + ".json"
    config = json.loads(config_bytes)
    assert (config["architecture"], config["os"]) == ("arm64", "linux")
    assert config["config"]["Entrypoint"] == ["/bin/tool"]
    assert config["config"]["User"] == "1:1"
    layers = entry["Layers"]
    assert isinstance(layers, list)
    (layer_name,) = layers
    layer = members[layer_name]
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    assert layer_name == f"{hashlib.sha256(layer).hexdigest()}/layer.tar"
    with tarfile.open(tmp_path / "image.tar") as outer:
        extracted = outer.extractfile(layer_name)
        assert extracted is not None
        with tarfile.open(fileobj=extracted) as inner:
            tool = inner.getmember("bin/tool")
            assert (tool.mode, tool.uid, tool.gid, tool.mtime) == (0o755, 0, 0, 0)
            assert inner.extractfile(tool).read() == b"\x7fELF binary"  # type: ignore[union-attr]
    again = tmp_path / "again.tar"
    write_docker_archive(
        again, "localhost/x:1", files, entrypoint=["/bin/tool"], user="1:1", architecture="arm64"
    )
    assert again.read_bytes() == target.read_bytes()


def test_the_pause_image_is_built_once_prunes_dead_partials_and_waits_for_sigterm(
    cache: Path, tmp_path: Path
) -> None:
    cache.mkdir(parents=True)
    dead, running = (cache / f".pause-old.tar.{pid}.partial" for pid in (2**22 + 1, os.getpid()))
    for partial in (dead, running):
        partial.write_bytes(b"cut short")
    built = pause_image()
    assert (dead.exists(), running.exists()) == (False, True)  # a build may still write it
    assert built.reference == PAUSE_REFERENCE == "localhost/gitstage-pause:1"
    assert built.archive.parent == cache
    inode = built.archive.stat().st_ino
    assert pause_image() == built
    assert built.archive.stat().st_ino == inode  # reused, not rewritten
    (entry,), _ = read_archive(built.archive)
    assert entry["RepoTags"] == [PAUSE_REFERENCE]
    with tarfile.open(built.archive) as outer:
        layer = outer.extractfile(entry["Layers"][0])  # type: ignore[index]
        assert layer is not None
        with tarfile.open(fileobj=layer) as inner:
            inner.extract("pause", tmp_path, filter="tar")
    for stop in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen([str(tmp_path / "pause")])
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.5)  # still waiting: it blocks until signalled
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0


def test_a_failed_build_leaves_no_archive_and_names_the_step(cache: Path, checkout: Path) -> None:
    (checkout / PAUSE_SOURCE / "main.go").write_text("package main\nfunc main() { nope() }\n")
    with pytest.raises(ImageError) as failed:
        pause_image(checkout)
    message = str(failed.value)
    assert message.startswith("go build failed with exit code 1: ")
    assert "undefined: nope" in message
    assert "\n" not in message
    assert [path.name for path in cache.iterdir()] == [".pause.lock"]  # no archive, no scratch


def test_a_cached_archive_is_reused_without_building(
    cache: Path, checkout: Path, only_tools: Callable[..., None]
) -> None:
    key = image_key(checkout)
    archive = cache / f"gitstage-{key}.tar"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"built before")
    only_tools()  # no buildah at all
    assert gitstage_image(checkout) == BuiltImage(f"localhost/gitstage:{key}", archive)


def test_a_partial_archive_is_never_taken_for_a_complete_one(
    cache: Path, checkout: Path, only_tools: Callable[..., None]
) -> None:
    archive = cache / f"gitstage-{image_key(checkout)}.tar"
    archive.parent.mkdir(parents=True)
    archive.with_name(f".{archive.name}.123.partial").write_bytes(b"cut short")
    only_tools(buildah="exit 125")
    with pytest.raises(ImageError, match=r"^mmdebstrap: mmdebstrap is not installed \("):
        gitstage_image(checkout)
    assert not archive.exists()


def test_a_failing_step_is_one_line_with_its_tail_and_log(
    cache: Path, checkout: Path, only_tools: Callable[..., None]
) -> None:
    count = "i=0; while [ $i -lt 20 ]; do i=$((i + 1)); echo $i; done"
    output = f"echo 'I: starting'; echo 'E: no such package: python9'; {count}; exit 2"
    only_tools(buildah="exit 125", mmdebstrap=output)
    with pytest.raises(ImageError) as failed:
        gitstage_image(checkout)
    log = cache / "logs" / "mmdebstrap.log"
    assert str(failed.value) == (
        "mmdebstrap failed with exit code 2: E: no such package: python9 | ... | 18 | 19 | 20"
        f" (log: {log})"
    )
    assert log.read_text().splitlines()[:2] == ["I: starting", "E: no such package: python9"]


def test_progress_lines_name_the_image_and_the_elapsed_time(
    cache: Path,
    checkout: Path,
    only_tools: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    steps = "echo 'I: downloading packages with apt...'; echo 'I: detail'; exit 1"
    only_tools(buildah="exit 125", mmdebstrap=steps)
    with pytest.raises(ImageError):
        gitstage_image(checkout)
    assert capsys.readouterr().err.splitlines() == [
        "images: base image: mmdebstrap bookworm (0s)",
        "images: base image: I: downloading packages with apt... (0s)",
    ]

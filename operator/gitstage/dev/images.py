"""Container images for a real node on a machine no registry can be pulled from: built here,
cached, and written as docker archives that `ctr -n k8s.io images import` loads.

  gitstage_image()  the repository's Dockerfile, built unchanged by buildah on base_image()
  base_image()      a stand-in for python:3.12-slim-bookworm, from Debian packages (mmdebstrap)
  pause_image()     the pod sandbox image: a static Go binary that waits for SIGTERM

Everything lives under ${XDG_CACHE_HOME:-~/.cache}/gitstage/images/: the archives, named by a
hash of their inputs and reused as they are while those are unchanged; buildah's own storage
(an overlay store, apart from the machine's); the logs of the long steps. Building needs root
(buildah, mmdebstrap), and Go for the pause image.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitstage.dev.dockerignore import context_files
from gitstage.dev.logs import log_excerpt
from gitstage.dev.processes import alive

REPO_ROOT = Path(__file__).resolve().parents[3]
BASE_REFERENCE = "localhost/gitstage-python:3.11-bookworm"
IMAGE_REPOSITORY = "localhost/gitstage"
PAUSE_REFERENCE = "localhost/gitstage-pause:1"
PAUSE_SOURCE = Path("tests") / "cluster" / "pause"
RECIPE_LABEL = "dev.gitstage.recipe"
KEPT_ARCHIVES = 3  # per image: enough for a few worktrees building in turn
TAIL_LINES = 3
# A TLS proxy's CA and pip's settings, when the machine has them: a build container needs both
# to reach the package index. Mounted read-only; they change how packages are reached, not which.
HOST_TRUST_FILES = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pip.conf"))

_APT_CLEAN = (
    'Dir::Cache::pkgcache "";\n'
    'Dir::Cache::srcpkgcache "";\n'
    'APT::Keep-Downloaded-Packages "false";\n'
)
# The base: what python:3.12-slim-bookworm offers the Dockerfile (python and pip first on PATH,
# CA certificates, apt, useradd), from bookworm with its updates and security suites (mmdebstrap
# adds them when no mirror is given). minbase, unlike the apt variant, has passwd (useradd).
# A venv at /usr/local puts python and pip where the official image has them, and pip may
# install there (Debian's own python refuses: externally managed).
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates",
    # debian:bookworm-slim's exclusions, which also apply to what the Dockerfile installs.
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    # debian:bookworm-slim's apt settings: no package caches or downloaded .debs left in layers
    # (mmdebstrap's own clean-up no longer finds the caches once they are configured away).
    f"--customize-hook=printf '%s' '{_APT_CLEAN}' > \"$1/etc/apt/apt.conf.d/docker-clean\""
    ' && rm -f "$1"/var/cache/apt/*.bin',
    '--customize-hook=chroot "$1" python3 -m venv /usr/local',
    "bookworm",
)
BASE_CONFIG = (
    "--env=PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "--env=LANG=C.UTF-8",
    "--cmd=python3",
)
# No --layers: buildah's layer cache ignores what a RUN --mount=from=build mounts, and would
# keep the previous gitstage in the install layer.
BUD_OPTIONS = ("--isolation=chroot", "--pull=never")
_STEP_LINE = re.compile(r"(\[\d+/\d+\] )?STEP \d+/\d+: ")
_MMDEBSTRAP_LINE = re.compile(r"I: (downloading|extracting|installing|running)")


class ImageError(RuntimeError):
    """A build step failed; one line naming the step, with the tail of its output."""


@dataclass(frozen=True)
class BuiltImage:
    reference: str
    archive: Path  # a docker archive naming `reference`


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    user: str
    workdir: str


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitstage" / "images"


def base_image() -> str:
    """The base's reference in buildah's store, built when missing or built from another recipe."""
    key = base_key()
    with _locked("base"):
        if _labels(BASE_REFERENCE).get(RECIPE_LABEL) == key:
            return BASE_REFERENCE
        clock = _Clock("base image")
        with tempfile.TemporaryDirectory(dir=_ensure_cache()) as scratch:
            rootfs = Path(scratch) / "rootfs.tar"
            clock.say(f"mmdebstrap {MMDEBSTRAP_OPTIONS[-1]}")
            argv = ["mmdebstrap", *MMDEBSTRAP_OPTIONS, str(rootfs)]
            _stream(clock, "mmdebstrap", argv, echo=_MMDEBSTRAP_LINE)
            clock.say(f"buildah commit {BASE_REFERENCE} ({_megabytes(rootfs)} MB rootfs)")
            container = _capture("buildah from", _buildah("from", "scratch")).strip()
            try:
                _capture("buildah add", _buildah("add", container, str(rootfs), "/"))
                label = f"--label={RECIPE_LABEL}={key}"
                _capture("buildah config", _buildah("config", *BASE_CONFIG, label, container))
                _capture("buildah commit", _buildah("commit", "-q", container, BASE_REFERENCE))
            finally:
                _capture("buildah rm", _buildah("rm", container))
        clock.say("base image done")
    return BASE_REFERENCE


def base_key() -> str:
    return _digest([json.dumps([BASE_REFERENCE, MMDEBSTRAP_OPTIONS, BASE_CONFIG]).encode()])


def image_key(repo_root: Path = REPO_ROOT) -> str:
    """A hash of what the image is built from: the Dockerfile, the files its context sends (as
    .dockerignore selects them, which covers pyproject.toml, README.md and operator/) and the
    base's recipe."""
    names = sorted({"Dockerfile", ".dockerignore", *context_files(repo_root)})
    recipe = json.dumps(BUD_OPTIONS).encode()
    files = (_file_record(repo_root, name) for name in names)
    return _digest([base_key().encode(), recipe, *files])


def gitstage_image(repo_root: Path = REPO_ROOT) -> BuiltImage:
    """The image built from `repo_root`'s Dockerfile, as a docker archive; cached by input hash."""
    if not (repo_root / "Dockerfile").is_file():
        raise ImageError(f"no Dockerfile in {repo_root}: build from a gitstage checkout")
    key = image_key(repo_root)
    image = BuiltImage(f"{IMAGE_REPOSITORY}:{key}", _ensure_cache() / f"gitstage-{key}.tar")
    if _reuse(image.archive):
        return image
    # One gitstage build at a time (two cores do not build two faster), which also keeps the
    # pruning of buildah's store away from another build's intermediate images.
    with _locked("gitstage"):
        if _reuse(image.archive):  # built by another process while this one waited
            return image
        base = base_image()
        clock = _Clock("gitstage image")
        clock.say(f"buildah bud {repo_root / 'Dockerfile'} on {base}")
        volumes = [f"--volume={path}:{path}:ro" for path in HOST_TRUST_FILES if path.is_file()]
        bud = _buildah(
            "bud", *BUD_OPTIONS,
            f"--build-arg=PYTHON_IMAGE={base}", *volumes,
            f"--tag={image.reference}", f"--file={repo_root / 'Dockerfile'}", str(repo_root),
        )  # fmt: skip
        _stream(clock, "buildah bud", bud, echo=_STEP_LINE)
        clock.say(f"writing {image.archive.name}")
        with _atomic(image.archive) as partial:
            target = f"docker-archive:{partial}:{image.reference}"
            _stream(clock, "buildah push", _buildah("push", "-q", image.reference, target))
        clock.say(f"gitstage image done: {_megabytes(image.archive)} MB archive")
        _prune_store(_prune("gitstage-*.tar", keep=image.archive))
    return image


def pause_image(repo_root: Path = REPO_ROOT) -> BuiltImage:
    """The sandbox image: `PAUSE_SOURCE` built with CGO off, packed into a docker archive."""
    source = repo_root / PAUSE_SOURCE
    arch, version = _capture("go env", ["go", "env", "GOARCH", "GOVERSION"]).split()
    records = [_file_record(source, name) for name in ("go.mod", "main.go")]
    key = _digest([PAUSE_REFERENCE.encode(), arch.encode(), version.encode(), *records])
    image = BuiltImage(PAUSE_REFERENCE, _ensure_cache() / f"pause-{key}.tar")
    if _reuse(image.archive):
        return image
    with _locked("pause"), tempfile.TemporaryDirectory(dir=_ensure_cache()) as scratch:
        if _reuse(image.archive):
            return image
        clock = _Clock("pause image")
        clock.say(f"go build {source}")
        binary = Path(scratch) / "pause"
        env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
        build = ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."]
        _capture("go build", build, cwd=source, env=env)
        with _atomic(image.archive) as partial:
            layer = {"pause": (binary.read_bytes(), 0o755)}
            # The upstream pause image's user: the sandbox needs no privileges.
            write_docker_archive(
                partial,
                PAUSE_REFERENCE,
                layer,
                entrypoint=["/pause"],
                user="65535:65535",
                architecture=arch,
            )
        clock.say("pause image done")
        _prune("pause-*.tar", keep=image.archive)
    return image


def write_docker_archive(
    target: Path,
    reference: str,
    files: Mapping[str, tuple[bytes, int]],
    *,
    entrypoint: Sequence[str],
    user: str,
    architecture: str,
) -> None:
    """A one-layer image in `docker save`'s format: manifest.json, the config, layer.tar.

    `files` maps paths in the image to (content, mode); everything is owned by root and dated
    1970, so the same files give the same bytes.
    """
    layer = _tar_bytes(dict(sorted(files.items())))
    layer_id = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": architecture,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": list(entrypoint), "User": user, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "gitstage dev images"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = f"{layer_id}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [reference], "Layers": [layer_name]}]
    entries = {
        config_name: (config_bytes, 0o644),
        layer_name: (layer, 0o644),
        "manifest.json": (json.dumps(manifest).encode(), 0o644),
    }
    target.write_bytes(_tar_bytes(entries))


def image_config(image: BuiltImage) -> ImageConfig:
    """How the image runs (entrypoint, environment, user), read from buildah's store."""
    _ensure_stored(image)
    inspected = _inspect(image.reference)
    if inspected is None:
        raise ImageError(f"buildah inspect: {image.reference} is not in buildah's store")
    config = inspected["OCIv1"]["config"]
    return ImageConfig(
        tuple(config.get("Entrypoint") or ()),
        tuple(config.get("Cmd") or ()),
        tuple(config.get("Env") or ()),
        config.get("User", ""),
        config.get("WorkingDir") or "/",
    )


@contextmanager
def mounted_rootfs(image: BuiltImage) -> Iterator[Path]:
    """The image's root filesystem, mounted from a fresh working container that is removed (and
    unmounted) on exit. Loaded from the archive when buildah's store lacks the image."""
    _ensure_stored(image)
    create = _buildah("from", "--pull=never", "-q", image.reference)
    container = _capture("buildah from", create).strip()
    try:
        yield Path(_capture("buildah mount", _buildah("mount", container)).strip())
    finally:
        _capture("buildah rm", _buildah("rm", container))


def _ensure_stored(image: BuiltImage) -> None:
    if _inspect(image.reference) is None:
        source = f"docker-archive:{image.archive}"
        _capture("buildah pull", _buildah("pull", "-q", source))


def _labels(reference: str) -> dict[str, str]:
    inspected = _inspect(reference)
    if inspected is None:
        return {}
    labels: dict[str, str] = inspected["OCIv1"]["config"].get("Labels") or {}
    return labels


def _inspect(reference: str) -> dict[str, Any] | None:
    """`buildah inspect` of an image in the store, None when the store lacks it."""
    argv = _buildah("inspect", "--type=image", reference)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ImageError(_not_installed("buildah inspect", "buildah")) from None
    if result.returncode != 0:
        return None
    inspected: dict[str, Any] = json.loads(result.stdout)
    return inspected


def _buildah(*args: str) -> list[str]:
    """buildah on its own store under the cache, so nothing of the machine's store is touched."""
    store = cache_dir() / "buildah"
    return [
        "buildah", f"--root={store / 'root'}", f"--runroot={store / 'run'}",
        "--storage-driver=overlay", *args,
    ]  # fmt: skip


class _Clock:
    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"images: {self.what}: {message} ({elapsed:.0f}s)", file=sys.stderr, flush=True)


def _stream(clock: _Clock, step: str, argv: list[str], echo: re.Pattern[str] | None = None) -> None:
    """Run a long step with its output in a log file, echoing the lines that show progress."""
    log = _ensure_cache() / "logs" / (step.replace(" ", "-") + ".log")
    log.parent.mkdir(exist_ok=True)
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except FileNotFoundError:
        raise ImageError(_not_installed(step, argv[0])) from None
    assert process.stdout is not None
    with process, log.open("w") as out:
        for line in process.stdout:
            out.write(line)
            lines.append(line.strip())
            if echo is not None and echo.match(line):
                clock.say(line.strip()[:100])
    if process.returncode != 0:
        raise ImageError(_failure(step, process.returncode, lines, log))


def _capture(
    step: str,
    argv: list[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """stdout of a short step; ImageError with the tail of its stderr when it fails."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    except FileNotFoundError:
        raise ImageError(_not_installed(step, argv[0])) from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).splitlines()
        raise ImageError(_failure(step, result.returncode, lines))
    return result.stdout


def _not_installed(step: str, tool: str) -> str:
    return f"{step}: {tool} is not installed (scripts/setup installs it)"


def _failure(step: str, code: int, lines: list[str], log: Path | None = None) -> str:
    """One line: the step, its exit code, the tail of its output (after an earlier error line)."""
    shown = log_excerpt([line.strip() for line in lines if line.strip()], TAIL_LINES, errors=1)
    tail = " | ".join(shown) or "no output"
    where = f" (log: {log})" if log is not None else ""
    return f"{step} failed with exit code {code}: {tail}{where}"


def _ensure_cache() -> Path:
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """One builder per image at a time: a second process waits, then finds the archive made."""
    with (_ensure_cache() / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    """A temporary name beside `target`, renamed to it only when the block succeeds: a
    half-written archive is never taken for a complete one."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        yield partial
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _reuse(archive: Path) -> bool:
    if not archive.is_file():
        return False
    os.utime(archive)  # the modification time says when it was last used (see _prune)
    return True


def _prune(pattern: str, keep: Path) -> list[Path]:
    """Delete all but the most recently used archives of one image; return the deleted ones."""
    archives = sorted(cache_dir().glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    stale = [path for path in archives if path != keep][KEPT_ARCHIVES - 1 :]
    for path in stale:
        path.unlink(missing_ok=True)
    # What a killed build left half-written (its pid is in the name; see _atomic).
    for partial in cache_dir().glob(f".{pattern}.*.partial"):
        if not alive(int(partial.name.split(".")[-2])):
            partial.unlink(missing_ok=True)
    return stale


def _prune_store(stale: list[Path]) -> None:
    """Untag the images of deleted archives, then drop untagged images (previous bases, the
    build stages). Failures are left for next time: an image may be in use."""
    for path in stale:
        tag = f"{IMAGE_REPOSITORY}:{path.stem.removeprefix('gitstage-')}"
        subprocess.run(_buildah("rmi", tag), capture_output=True, check=False)
    subprocess.run(_buildah("rmi", "--prune"), capture_output=True, check=False)


def _file_record(root: Path, name: str) -> bytes:
    """A file's path, kind and content (a symlink's target), for hashing."""
    path = root / name
    if path.is_symlink():
        return b"L\0" + name.encode() + b"\0" + os.readlink(path).encode()
    executable = b"X" if path.stat().st_mode & 0o111 else b"F"
    return executable + b"\0" + name.encode() + b"\0" + path.read_bytes()


def _digest(records: Sequence[bytes]) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(len(record).to_bytes(8, "big"))
        digest.update(record)
    return digest.hexdigest()[:12]


def _tar_bytes(entries: Mapping[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, (data, mode) in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _megabytes(path: Path) -> int:
    return round(path.stat().st_size / 1e6)

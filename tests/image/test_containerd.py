"""The archives as the node uses them: a containerd of its own (CRI off, its own root, state and
socket, nothing shared with a running node) imports both with `ctr -n k8s.io images import`,
under the references the node and the pods name, and runs them: the gitstage image as its user
on a read-only root, the pause image until SIGTERM, when it exits 0."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitstage import __version__
from gitstage.dev.cluster import wait_until
from gitstage.dev.images import BuiltImage, pause_image
from gitstage.dev.processes import spawn, stop_process

pytestmark = pytest.mark.image

# `--cgroup ""`: runc's own cgroup per container, removed with it (the default, one per
# namespace, would outlive this containerd).
RUN = ("run", "--rm", "--cgroup", "", "--read-only")


@dataclass(frozen=True)
class Containerd:
    socket: Path

    def argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args]

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def pause() -> BuiltImage:
    return pause_image()


@pytest.fixture(scope="module")
def containerd(
    tmp_path_factory: pytest.TempPathFactory, image: BuiltImage, pause: BuiltImage
) -> Iterator[Containerd]:
    """Started, with both archives imported."""
    state = tmp_path_factory.mktemp("ctd")
    found = Containerd(state / "containerd.sock")
    (state / "config.toml").write_text(
        f'version = 2\nroot = "{state / "root"}"\nstate = "{state / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{found.socket}"\n'
    )
    config = ["containerd", "--config", str(state / "config.toml")]
    process = spawn(config, state / "containerd.log", detached=False)
    try:
        wait_until("containerd", lambda: found.ctr("version").returncode == 0, timeout=30)
        for built in (image, pause):
            imported = found.ctr("images", "import", str(built.archive))
            assert imported.returncode == 0, imported.stderr
        yield found
    finally:
        stop_process(process.pid, process)
    with Path("/proc/mounts").open() as mounts:
        assert str(state) not in mounts.read(), "containerd left mounts behind"


def test_the_archives_import_under_their_references(
    containerd: Containerd, image: BuiltImage, pause: BuiltImage
) -> None:
    listed = containerd.ctr("images", "ls", "-q").stdout.split()
    assert {image.reference, pause.reference} <= set(listed)


def test_the_imported_image_runs_as_its_user(containerd: Containerd, image: BuiltImage) -> None:
    tmp = ("--mount", "type=tmpfs,src=tmpfs,dst=/tmp,options=rw")
    version = containerd.ctr(*RUN, *tmp, image.reference, "version", "gitstage", "--version")
    assert (version.returncode, version.stdout) == (0, f"gitstage, version {__version__}\n")
    user = containerd.ctr(*RUN, image.reference, "user", "id", "-u")
    assert user.stdout == "10001\n", user.stderr


def test_the_pause_image_waits_for_sigterm_and_exits_0(
    containerd: Containerd, pause: BuiltImage
) -> None:
    argv = containerd.argv(*RUN, pause.reference, "pause")
    task = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def running() -> bool:
        return "RUNNING" in containerd.ctr("tasks", "ls").stdout

    try:
        wait_until("the pause task", running, timeout=30)
        assert task.poll() is None, "pause exited before it was signalled"
        assert containerd.ctr("tasks", "kill", "--signal", "SIGTERM", "pause").returncode == 0
        assert task.wait(timeout=30) == 0
    finally:
        if task.poll() is None:
            containerd.ctr("tasks", "kill", "--signal", "SIGKILL", "pause")
            task.wait(timeout=30)

"""A real DVC 3 project in a git repository, driven through the `dvc` and `git` CLIs.

project = DvcProject.create(path)                 # git init + dvc init
project.set_remote("store", "/tmp/remote")        # default remote, committed in .dvc/config
project.write("models/model.bin", data)
project.dvc("add", "models/model.bin")
sha = project.commit("add model")
project.dvc("push", "-r", "store")
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DVC = str(Path(sys.executable).with_name("dvc"))
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Tester",
    "GIT_AUTHOR_EMAIL": "tester@example.com",
    "GIT_COMMITTER_NAME": "Tester",
    "GIT_COMMITTER_EMAIL": "tester@example.com",
}


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure the assertion shows its output."""
    full_env = {**os.environ, **GIT_IDENTITY, "DVC_NO_ANALYTICS": "1", **(env or {})}
    result = subprocess.run(
        args, cwd=cwd, env=full_env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result.stdout


@dataclass
class DvcProject:
    path: Path

    @classmethod
    def create(cls, path: Path) -> DvcProject:
        path.mkdir(parents=True, exist_ok=True)
        run(["git", "init", "-q", "-b", "main"], path)
        project = cls(path)
        project.dvc("init", "-q")
        project.dvc("config", "core.analytics", "false")
        return project

    def dvc(self, *args: str) -> str:
        return run([DVC, *args], self.path)

    def git(self, *args: str) -> str:
        return run(["git", *args], self.path)

    def set_remote(self, name: str, url: str) -> None:
        """Rewrite the committed default remote (what `dvc remote add -d -f` writes)."""
        self.dvc("remote", "add", "-d", "-f", name, url)

    def write(self, relpath: str, data: bytes | str) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)
        return target

    def symlink(self, relpath: str, target: str) -> None:
        link = self.path / relpath
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    @classmethod
    def with_weights(cls, path: Path, remote: Path, weights: bytes) -> DvcProject:
        """A project whose model `weights` (models/weights.bin, in artifacts.yaml) is tracked by
        DVC, committed, and pushed to the local remote `remote`."""
        project = cls.create(path)
        project.set_remote("store", str(remote))
        project.write("models/weights.bin", weights)
        project.dvc("add", "-q", "models/weights.bin")
        project.write("artifacts.yaml", "weights:\n  type: model\n  path: models/weights.bin\n")
        project.commit("weights, tracked by DVC")
        project.dvc("push", "-q")
        return project

    def bare_copy(self, destination: Path) -> Path:
        """A bare clone with every branch and tag, as a server would hold it."""
        run(["git", "clone", "-q", "--bare", str(self.path), str(destination)], self.path.parent)
        return destination

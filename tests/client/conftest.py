"""A registry served over loopback smart HTTP with Basic auth, a data scientist's clone of it,
and the gitstage and gto CLIs run as the user runs them (subprocesses, credentials in the env)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitstage.dev.git_server import BasicAuth, GitHttpServer

USER, PASSWORD = "alice", "s3cret-Pa55word"
GTO = shutil.which("gto", path=str(Path(sys.executable).parent)) or "gto"


@dataclass
class Served:
    server: GitHttpServer
    tmp: Path
    env: dict[str, str]

    def url(self, name: str = "registry.git") -> str:
        return self.server.url(name)

    def authed(self, name: str = "registry.git") -> str:
        return self.url(name).replace("://", f"://{USER}:{PASSWORD}@", 1)

    def git(self, cwd: Path, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def gitstage(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "gitstage", *args],
            cwd=cwd or self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert PASSWORD not in done.stdout + done.stderr
        return done

    def gto(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GTO, *args], cwd=cwd, env=self.env, capture_output=True, text=True, check=False
        )

    def clone(self, name: str, repo: str = "registry.git") -> Path:
        """A fresh clone with every tag (what gto reads)."""
        target = self.tmp / name
        self.git(self.tmp, "clone", "-q", self.authed(repo), str(target))
        return target

    def new_repo(self, name: str, files: dict[str, str | bytes]) -> Path:
        """A served bare repository `name`.git and a work clone of it with `files` committed."""
        bare = self.tmp / "srv" / f"{name}.git"
        self.git(self.tmp, "init", "-q", "--bare", "-b", "main", str(bare))
        work = self.tmp / f"{name}-work"
        self.git(self.tmp, "clone", "-q", self.authed(f"{name}.git"), str(work))
        self.commit(work, files, "initial")
        self.git(work, "push", "-q", "origin", "main")
        return work

    def commit(self, work: Path, files: dict[str, str | bytes], message: str) -> str:
        for relpath, content in files.items():
            target = work / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        self.git(work, "add", "-A")
        self.git(work, "commit", "-qm", message)
        return self.git(work, "rev-parse", "HEAD")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "srv").mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "Dana Scientist",
        "GIT_AUTHOR_EMAIL": "dana@example.com",
        "GIT_COMMITTER_NAME": "Dana Scientist",
        "GIT_COMMITTER_EMAIL": "dana@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GITSTAGE_GIT_USERNAME": USER,
        "GITSTAGE_GIT_PASSWORD": PASSWORD,
        "GITSTAGE_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    server = GitHttpServer(tmp_path / "srv", auth=BasicAuth(USER, PASSWORD)).start()
    try:
        yield Served(server, tmp_path, env)
    finally:
        server.stop()


def as_json(text: str) -> object:
    return json.loads(text)


MODEL_PICKLE = pickle.dumps({"weights": [1, 2, 3]})

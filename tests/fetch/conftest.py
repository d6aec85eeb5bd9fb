"""One real DVC registry for the fetch tests, served by loopback git (with auth) and HTTP servers.

Built once per session: git + dvc CLIs are slow to start, and every test reads, never writes.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.support.dvc_project import DvcProject, run
from tests.support.http_files import FileHttpServer

AUTH = BasicAuth("alice", "pa55-W0rd-secret")
LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


@dataclass
class Registry:
    project: DvcProject
    remote_dir: Path
    files: FileHttpServer
    git: GitHttpServer
    local_commit: str
    http_commit: str
    tampered_commit: str
    central_commit: str
    content: dict[str, bytes] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.git.url("registry.git")

    @property
    def central_url(self) -> str:
        return self.git.url("central.git")


def _bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _index(entries: dict[str, dict[str, object]]) -> str:
    return json.dumps(entries, indent=1)  # JSON is YAML


def _plant_evil_listing(project: DvcProject, remote: Path) -> None:
    """A DVC directory whose listing (with a valid md5) names `../pwned`."""
    payload = b"owned\n"
    payload_md5 = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    listing = json.dumps([{"md5": payload_md5, "relpath": "../pwned"}]).encode()
    listing_md5 = hashlib.md5(listing, usedforsecurity=False).hexdigest()
    for md5, data, suffix in ((payload_md5, payload, ""), (listing_md5, listing, ".dir")):
        target = remote / "files" / "md5" / md5[:2] / (md5[2:] + suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    project.write(
        "evil_dir.dvc",
        f"outs:\n- md5: {listing_md5}.dir\n  size: 6\n  nfiles: 1\n  hash: md5\n  path: evil_dir\n",
    )


def _build_registry(project: DvcProject, remote: Path) -> dict[str, bytes]:
    content = {
        "model": _bytes(1, 300_000),
        "weights": _bytes(2, 200_000),
        "config": b'{"layers": 3}\n',
        "vocab": b"a\nb\nc\n",
        "params": b"lr: 0.1\n",
    }
    project.write("models/model.bin", content["model"])
    project.write("models/bundle/weights.bin", content["weights"])
    project.write("models/bundle/config.json", content["config"])
    project.write("models/bundle/nested/vocab.txt", content["vocab"])
    project.dvc("add", "-q", "models/model.bin", "models/bundle")
    project.dvc(
        "stage",
        "add",
        "-q",
        "-n",
        "train",
        "-o",
        "out",
        "mkdir -p out && printf '{\"acc\": 0.9}' > out/metrics.json",
    )
    project.dvc("repro", "-q")
    project.write("configs/params.yaml", content["params"])
    project.write("git_model/weights.txt", "w\n")
    project.write("git_model/nested/a.txt", "a\n")
    (project.write("git_model/run.sh", "#!/bin/sh\n")).chmod(0o755)
    project.symlink("git_model/link.txt", "nested/a.txt")
    project.symlink("sneaky", "../outside.bin")
    project.symlink("sneaky_abs", "/etc/passwd")
    project.write("trap/ok.txt", "ok\n")
    project.symlink("trap/evil", "../../etc/passwd")
    project.write("lfs/model.bin", LFS_POINTER)
    _plant_evil_listing(project, remote)
    project.write(
        "artifacts.yaml",
        _index(
            {
                "model": {"type": "model", "path": "models/model.bin"},
                "bundle": {"type": "model", "path": "models/bundle"},
                "vocab": {"path": "models/bundle/nested/vocab.txt"},
                "metrics": {"path": "out/metrics.json"},
                "params": {"path": "configs/params.yaml"},
                "gitdir": {"path": "git_model"},
                "escape": {"path": "../outside.bin"},
                "absolute": {"path": "/etc/passwd"},
                "sneaky": {"path": "sneaky"},
                "sneaky-abs": {"path": "sneaky_abs"},
                "trap": {"path": "trap"},
                "lfs": {"path": "lfs/model.bin"},
                "evil-listing": {"path": "evil_dir"},
                "ghost": {"path": "models/missing.bin"},
            }
        ),
    )
    return content


def _central(root: Path, registry_url: str, http_commit: str, central_url: str) -> str:
    """A registry that only links to models living in another repository."""
    project = DvcProject(root)
    root.mkdir()
    project.git("init", "-q", "-b", "main")

    def link(**fields: str) -> dict[str, object]:
        return {"type": "model", "custom": {"gitstage": {"link": fields}}}

    project.write(
        "artifacts.yaml",
        _index(
            {
                "churn": link(repo=registry_url, rev=http_commit, artifact="model"),
                "churn-params": link(
                    repo=registry_url, rev=http_commit, path="configs/params.yaml"
                ),
                "bundle": link(repo=registry_url, rev=http_commit),
                "loop": link(repo=central_url, rev="main"),
                "norev": {"custom": {"gitstage": {"link": {"repo": registry_url}}}},
            }
        ),
    )
    return project.commit("links")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    base = tmp_path_factory.mktemp("registry")
    remote = base / "remote"
    remote.mkdir()
    served = base / "served"
    served.mkdir()
    tampered = base / "tampered-remote"
    with FileHttpServer(remote) as files, GitHttpServer(served, auth=AUTH) as git:
        project = DvcProject.create(base / "work")
        project.set_remote("store", str(remote))
        content = _build_registry(project, remote)
        local_commit = project.commit("registry with a local DVC remote")
        project.dvc("push", "-q")
        shutil.copytree(remote, tampered)
        model_md5 = hashlib.md5(content["model"], usedforsecurity=False).hexdigest()
        victim = tampered / "files" / "md5" / model_md5[:2] / model_md5[2:]
        victim.write_bytes(b"X" + victim.read_bytes()[1:])
        project.set_remote("store", str(tampered))
        tampered_commit = project.commit("registry with a tampered remote")
        project.set_remote("store", files.url)
        http_commit = project.commit("registry with an HTTP DVC remote")
        project.bare_copy(served / "registry.git")
        central_commit = _central(
            base / "central", git.url("registry.git"), http_commit, git.url("central.git")
        )
        run(
            ["git", "clone", "-q", "--bare", str(base / "central"), str(served / "central.git")],
            base,
        )
        yield Registry(
            project,
            remote,
            files,
            git,
            local_commit,
            http_commit,
            tampered_commit,
            central_commit,
            content,
        )

"""Time and bytes: `gitstage fetch` vs `dvc get` for one ~200 MB DVC-tracked artifact.

Setup (all on loopback): a git registry with HISTORY earlier commits (each rewriting a 1 MB
git-tracked report, as a registry with a few versions has), served over smart HTTP by
`git http-backend`; the artifact, random bytes, in a DVC HTTP remote served by a static server.
Both tools fetch the same commit into an empty directory; bytes are counted at the servers.

    PYTHONPATH=operator:. python benchmarks/fetch_vs_dvc_get.py [--mb 200] [--history 10]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.dvc_project import DVC, DvcProject
from tests.support.http_files import FileHttpServer

from gitstage.dev.git_server import GitHttpServer

MB = 1024 * 1024


@dataclass
class Run:
    tool: str
    seconds: float
    git_bytes: int
    remote_bytes: int

    @property
    def total(self) -> int:
        return self.git_bytes + self.remote_bytes


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as output:
        for _ in range(size // MB):
            output.write(os.urandom(MB))


def build(base: Path, files: FileHttpServer, size_mb: int, history: int) -> tuple[Path, str]:
    remote = files.root
    project = DvcProject.create(base / "work")
    project.set_remote("store", str(remote))
    for number in range(history):
        write_random(project.path / "reports" / "report.bin", MB)
        project.commit(f"report {number}")
    print(f"writing {size_mb} MB of random bytes and running dvc add/push ...", flush=True)
    write_random(project.path / "models" / "model.bin", size_mb * MB)
    project.dvc("add", "-q", "models/model.bin")
    project.write("artifacts.yaml", "model:\n  type: model\n  path: models/model.bin\n")
    project.commit("model")
    project.dvc("push", "-q")
    project.set_remote("store", files.url)
    commit = project.commit("serve the DVC remote over HTTP")
    served = base / "served"
    served.mkdir()
    project.bare_copy(served / "registry.git")
    return served, commit


def timed(tool: str, args: list[str], git: GitHttpServer, files: FileHttpServer) -> Run:
    git_before, files_before = git.stats.bytes_sent, files.stats.bytes_sent
    started = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if os.environ.get("BENCH_DEBUG"):
        print(result.stderr[-3000:])
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{tool} failed: {result.stderr.strip()}")
    return Run(
        tool, elapsed, git.stats.bytes_sent - git_before, files.stats.bytes_sent - files_before
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="artifact size in MiB")
    parser.add_argument("--history", type=int, default=10, help="earlier commits in the repo")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitstage-bench-") as temporary:
        base = Path(temporary)
        (base / "remote").mkdir()
        with FileHttpServer(base / "remote") as files:
            served, commit = build(base, files, options.mb, options.history)
            with GitHttpServer(served) as git:
                url = git.url("registry.git")
                env_python = [sys.executable, "-m", "gitstage"]
                print(f"fetching {options.mb} MiB at {commit[:12]} from {url} ...", flush=True)
                ours = timed(
                    "gitstage fetch",
                    [
                        *env_python,
                        "fetch",
                        "--repo",
                        url,
                        "--rev",
                        commit,
                        "--artifact",
                        "model",
                        "--dest",
                        str(base / "ours"),
                    ],
                    git,
                    files,
                )
                noop = timed(
                    "gitstage fetch (re-run)",
                    [
                        *env_python,
                        "fetch",
                        "--repo",
                        url,
                        "--rev",
                        commit,
                        "--artifact",
                        "model",
                        "--dest",
                        str(base / "ours"),
                    ],
                    git,
                    files,
                )
                theirs = timed(
                    "dvc get",
                    [
                        DVC,
                        "get",
                        url,
                        "models/model.bin",
                        "--rev",
                        commit,
                        "-o",
                        str(base / "theirs" / "model.bin"),
                    ],
                    git,
                    files,
                )
        same = sha256(base / "ours" / "model.bin") == sha256(base / "theirs" / "model.bin")
    print(
        f"\nartifact {options.mb} MiB, repository history {options.history + 3} commits;"
        f" outputs identical: {same}"
    )
    print(f"{'tool':<26}{'seconds':>9}{'git KiB':>10}{'remote MiB':>12}{'total MiB':>11}")
    for run in (ours, noop, theirs):
        print(
            f"{run.tool:<26}{run.seconds:>9.2f}{run.git_bytes / 1024:>10.1f}"
            f"{run.remote_bytes / MB:>12.2f}{run.total / MB:>11.2f}"
        )
    print(
        f"\ndvc get / gitstage fetch: time x{theirs.seconds / ours.seconds:.2f},"
        f" bytes x{theirs.total / ours.total:.3f},"
        f" git bytes x{theirs.git_bytes / max(ours.git_bytes, 1):.1f}"
    )


if __name__ == "__main__":
    main()

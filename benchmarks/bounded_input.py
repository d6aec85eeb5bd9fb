"""Hostile input, refused: how long each refusal takes and how much memory the refusing process
peaks at, beside its target; and what checking `packed-refs` line by line costs a large listing.

Each refusal runs in a child Python process (its own peak resident memory, `ru_maxrss`):
  alias bomb      `gitstage show` on a 2 KB artifacts.yaml of nine nested alias levels;
  20 MB index     `gitstage show` on a 20 MB artifacts.yaml at HEAD (refused from the blob header);
  300 MB blob     materializing a 300 MB git blob under a 1 MB size limit (refused from its header);
  deep YAML       `gitstage show` on artifacts.yaml nesting 5,000 lists.
packed-refs: `RefDb.tags()` on TAGS packed tags, and the time of it spent validating the file.

    PYTHONPATH=operator:. python benchmarks/bounded_input.py [--tags 120000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tests.support.git import run_git

from gitstage.adapters.git import refdb
from gitstage.adapters.git.refdb import RefDb, locate

OPERATOR = Path(__file__).resolve().parents[1] / "operator"
REFUSAL_SECONDS = 1.0  # targets
REFUSAL_MIB = 150
# 1% of the README's objects-state `show --json` of 120,000 tags (1.78 s); warm reads list none.
CHECK_MS = 18.0

_CHILD = textwrap.dedent(
    """
    import resource, sys, time
    started = time.perf_counter()
    outcome = "accepted"
    try:
        if sys.argv[1] == "show":
            from click.testing import CliRunner
            from gitstage.cli.main import cli
            result = CliRunner().invoke(cli, ["show", "-r", sys.argv[2]])
            outcome = result.stderr.strip()[-60:] if result.exit_code else "accepted"
        else:
            from pathlib import Path, PurePosixPath
            import pygit2
            from gitstage.adapters.fetch.materialize import Located, materialize
            from gitstage.adapters.fetch.progress import Progress
            from gitstage.adapters.fetch.staging import ByteBudget, Staging
            from gitstage.adapters.git.commit_tree import CommitTree
            from gitstage.domain.fetch.plan import locate
            repo = pygit2.Repository(sys.argv[2])
            tree = CommitTree(repo, str(repo.head.target))
            path = PurePosixPath("big.bin")
            budget = ByteBudget(1_000_000)
            staging = Staging(Path(sys.argv[3]), budget, Progress("", None, enabled=False))
            with staging:
                materialize(locate(tree, path), Located(tree, path, None), staging, {})
    except Exception as error:
        outcome = str(error)[-60:]
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.3f} {peak_mib:.0f} {outcome}")
    """
)


def repository(path: Path, files: dict[str, bytes]) -> Path:
    run_git(path.parent, "init", "-q", "-b", "main", path.name)
    for name, data in files.items():
        (path / name).write_bytes(data)
    run_git(path, "add", "-A")
    run_git(path, "commit", "-qm", "hostile", date=1_700_000_000)
    return path


def alias_bomb() -> bytes:
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


def big_blob(path: Path) -> Path:
    run_git(path.parent, "init", "-q", "-b", "main", path.name)
    with (path / "big.bin").open("wb") as handle:
        handle.truncate(300 * 1024 * 1024)
    run_git(path, "add", "-A")
    run_git(path, "commit", "-qm", "big", date=1_700_000_000)
    return path


def refusal(mode: str, *args: str) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(OPERATOR), "GITSTAGE_CACHE": "off"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    seconds, mib, outcome = out.split(" ", 2)
    return float(seconds), float(mib), outcome


def packed_tags(path: Path, count: int) -> Path:
    run_git(path.parent, "init", "-q", "-b", "main", path.name)
    run_git(path, "commit", "-q", "--allow-empty", "-m", "c", date=1_700_000_000)
    head = run_git(path, "rev-parse", "HEAD")
    lines = ["# pack-refs with: peeled fully-peeled sorted "]
    lines += sorted(f"{head} refs/tags/m{number}@v1.0.{number}" for number in range(count))
    (path / ".git" / "packed-refs").write_text("\n".join(lines) + "\n")
    return path


def packed_cost(path: Path, repeat: int = 5) -> tuple[float, float]:
    dirs = locate(path)
    assert dirs is not None
    listing, checking = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        tags = RefDb(dirs).tags()
        listing.append(time.perf_counter() - started)
        packed = (path / ".git" / "packed-refs").read_bytes()
        started = time.perf_counter()
        refdb.check_packed(packed, len(tags), "packed-refs")
        checking.append(time.perf_counter() - started)
    return min(listing), min(checking)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=120_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitstage-bounded-") as scratch:
        root = Path(scratch)
        cases = {
            "alias bomb": ("show", repository(root / "bomb", {"artifacts.yaml": alias_bomb()})),
            "20 MB index": (
                "show",
                repository(root / "big", {"artifacts.yaml": b"# " + b"x" * 20_000_000 + b"\n"}),
            ),
            "deep YAML": (
                "show",
                repository(root / "deep", {"artifacts.yaml": b"a: " + b"[" * 5000 + b"]" * 5000}),
            ),
            "300 MB blob": ("blob", big_blob(root / "blob")),
        }
        print(f"{'case':<14} {'seconds':>8} {'target':>7} {'peak MiB':>9} {'target':>7}  outcome")
        for name, (mode, repo) in cases.items():
            seconds, mib, outcome = refusal(mode, str(repo), str(root / f"dest-{mode}"))
            print(
                f"{name:<14} {seconds:>8.3f} {REFUSAL_SECONDS:>7.1f} {mib:>9.0f}"
                f" {REFUSAL_MIB:>7}  {outcome}"
            )
        listing, checking = packed_cost(packed_tags(root / "packed", options.tags))
        print(
            f"packed-refs of {options.tags} tags: listing {listing * 1000:.1f} ms, of which the"
            f" line check {checking * 1000:.1f} ms ({checking / listing:.0%} of the listing;"
            f" target under {CHECK_MS:.0f} ms)"
        )


if __name__ == "__main__":
    main()

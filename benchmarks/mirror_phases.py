"""What one push costs the operator's mirror of a 120,000-tag registry: the sync and the read.

The registry of push_latency.py (`churn` plus 120,000 tags over 500 other artifacts, packed
refs) is served by the loopback smart-HTTP server; one `RemoteMirror` (what a poller holds)
syncs it cold, then each round pushes the next `churn#prod#N` and times `sync` and `registry`:
alternately with the pushed ref named (what a webhook delivery gives the poll: a partial
sync) and without (a poll: every ref listed). In process; the registry is cached between runs.

    PYTHONPATH=operator:. python benchmarks/mirror_phases.py [--rounds 10] [--tags 120000]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.push_latency import Repo, push_assignment, write_repo

from gitstage.adapters.mirror.remote_mirror import RemoteMirror
from gitstage.dev.git_server import GitHttpServer

TARGET_SECONDS = 1.0  # issue 20: push to Deployment updated, p50


def cached_repo(root: Path, rounds: int, tags: int) -> Repo:
    """The registry, written once per size; earlier runs' pushed assignments deleted."""
    saved = root / "repo.pickle"
    if not saved.exists():
        repo = write_repo(root, "registry", rounds + 1, tags)
        saved.write_bytes(pickle.dumps(repo))
    repo: Repo = pickle.loads(saved.read_bytes())  # noqa: S301 - our own file
    pushed = [f"churn#prod#{n}" for n in range(1, len(repo.commits))]
    for where in (repo.work, repo.bare):  # fails for the tags never pushed: that is fine
        command = ["git", "-C", str(where), "tag", "-d", *pushed]
        subprocess.run(command, check=False, capture_output=True)
    return repo


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="pushes (default 10)")
    parser.add_argument("--tags", type=int, default=120_000)
    args = parser.parse_args()
    root = Path(tempfile.gettempdir()) / f"gitstage-mirror-phases-{args.tags}-{args.rounds}"
    root.mkdir(exist_ok=True)
    repo = cached_repo(root, args.rounds, args.tags)
    figures: dict[str, list[tuple[float, float]]] = {"named": [], "listed": []}
    with (
        GitHttpServer(root / "srv") as server,
        tempfile.TemporaryDirectory(prefix="gitstage-mirror-") as cache,
    ):
        mirror = RemoteMirror(server.url("registry.git"), None, Path(cache))
        print(f"cold sync {timed(mirror.sync):.2f} s, cold read {timed(mirror.registry):.2f} s")
        for number in range(1, args.rounds + 1):
            push_assignment(repo, number)
            kind = "named" if number % 2 else "listed"
            hints = [f"refs/tags/churn#prod#{number}"] if kind == "named" else []
            sync = timed(lambda: mirror.sync(hints))  # noqa: B023 - called at once
            read = timed(mirror.registry)
            figures[kind].append((sync, read))
            print(f"push {number}: {kind:<6} sync {sync:.3f} s, read {read:.3f} s")
    print(f"{args.tags:,} tags; medians over {args.rounds // 2} pushes each:")
    for kind, rows in figures.items():
        sync = statistics.median(r[0] for r in rows)
        read = statistics.median(r[1] for r in rows)
        what = "webhook named the tag" if kind == "named" else "poll listed every ref"
        print(f"  {what:<22} sync {sync:.3f} s + read {read:.3f} s = {sync + read:.3f} s")
    named = sum(statistics.median(r[i] for r in figures["named"]) for i in (0, 1))
    verdict = "met" if named < TARGET_SECONDS else "not met"
    print(f"target: a named push's sync and read well under {TARGET_SECONDS:g} s: {verdict}")


if __name__ == "__main__":
    main()

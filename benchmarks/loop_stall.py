"""The longest stall of the operator's event loop while a large registry is read.

The operator reads a repository's registry in a worker thread (`asyncio.to_thread`, as the
poller does), so the loop keeps running while Python code folds tags; it stalls only while one
C call holds the GIL (a marshal load of the object cache, a regex over packed-refs). A ticker
on the loop wakes every 5 ms and records how late it woke; the figure is the worst lateness,
for each state of a read (target: every stall under 100 ms):

  cold            a new mirror: no object cache, no fold kept (the operator's first poll)
  restart         the object cache on disk, no fold kept (the first poll after a restart)
  changed         one new stage tag since the last read (a push)
  unchanged       nothing changed (every idle poll)

The registry is show_bench.py's large one (120,000 tags over 500 artifacts), cached in a temp
directory; a copy is read so that the new tags never touch the cached registry.

    PYTHONPATH=operator:. python benchmarks/loop_stall.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.show_bench import LARGE, Promotion, cached_registry, progress

from gitstage.adapters.git.incremental import IncrementalReader
from gitstage.adapters.git.source import open_source

TICK = 0.005
TARGET_MS = 100.0


async def read_while_ticking(reader: IncrementalReader, repo: Path) -> tuple[float, float]:
    """(seconds the read took, worst lateness of the loop's ticker in milliseconds)."""
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            expected = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            worst = max(worst, time.perf_counter() - expected)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK * 2)
    started = time.perf_counter()
    await asyncio.to_thread(lambda: reader.read(open_source(repo)))
    took = time.perf_counter() - started
    done.set()
    await ticking
    return took, worst * 1000


def measure(repo: Path, repeat: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {}
    promote = Promotion(repo)
    try:
        for _ in range(repeat):
            shutil.rmtree(repo / ".git" / "gitstage", ignore_errors=True)
            reader = IncrementalReader()
            results.setdefault("cold", []).append(asyncio.run(read_while_ticking(reader, repo)))
            reader = IncrementalReader()
            results.setdefault("restart", []).append(asyncio.run(read_while_ticking(reader, repo)))
            promote()
            results.setdefault("changed", []).append(asyncio.run(read_while_ticking(reader, repo)))
            results.setdefault("unchanged", []).append(
                asyncio.run(read_while_ticking(reader, repo))
            )
            progress(f"  round done: { ({k: f'{v[-1][1]:.0f} ms' for k, v in results.items()}) }")
    finally:
        promote.undo()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "gitstage-show-bench"))
    args = parser.parse_args()
    source, _ = cached_registry(LARGE, Path(args.cache))
    with tempfile.TemporaryDirectory(prefix="gitstage-stall-") as scratch:
        repo = Path(scratch) / "registry"
        progress(f"copying the large registry to {repo} ...")
        subprocess.run(["cp", "-a", str(source), str(repo)], check=True)
        results = measure(repo, args.repeat)
    print(
        f"event-loop stalls while reading {LARGE.tags:,} tags in a worker thread "
        f"(ticker every {TICK * 1000:.0f} ms, {args.repeat} rounds)"
    )
    print(f"{'state':10} {'read (median)':>14} {'worst stall':>12}  target < {TARGET_MS:.0f} ms")
    for state, runs in results.items():
        took = statistics.median(t for t, _ in runs)
        worst = max(w for _, w in runs)
        verdict = "met" if worst < TARGET_MS else "not met"
        print(f"{state:10} {took:13.3f}s {worst:10.0f} ms  {verdict}")


if __name__ == "__main__":
    main()

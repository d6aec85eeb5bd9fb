"""`gitstage operator` under tracemalloc: SIGUSR2 writes where the live memory was allocated.

Used by benchmarks/scale.py for the memory profile (tracing slows the process down, so the
figures it times come from an untraced operator). The report groups live allocations by the
package, or gitstage's own subpackage, that allocated them: the innermost frame outside JSON
decoding and the kubernetes client (which only decode what others ask for), largest first,
into the file named by GITSTAGE_TRACE_OUT.

    GITSTAGE_TRACE_OUT=/tmp/trace.txt python benchmarks/traced_operator.py operator ...
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from collections import Counter
from types import FrameType

TOP = 25
# Frames kept per allocation: 1 keeps the traced operator usable at 1,000 registries; more
# charge decoded JSON to its requester, at a heavy cost in time.
FRAMES = int(os.environ.get("GITSTAGE_TRACE_FRAMES", "1"))
# Owners that only pass memory on: a JSON document decoded by the kubernetes client belongs to
# whoever asked for it, so the report charges the nearest frame outside these.
PASSTHROUGH = ("python/decoder", "python/__init__", "kubernetes", "urllib3", "python/json")


def owner(filename: str) -> str:
    """`gitstage/<subpackage>`, a site-packages distribution, or the standard library's module."""
    parts = filename.replace("\\", "/").split("/")
    if "gitstage" in parts:
        index = len(parts) - 1 - parts[::-1].index("gitstage")
        rest = parts[index + 1 :]
        return "gitstage/" + (rest[0].removesuffix(".py") if rest else "")
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    return "python/" + parts[-1].removesuffix(".py") if parts else filename


def charged(traceback: tracemalloc.Traceback) -> str:
    """The owner of the innermost frame that is not a passthrough (else of the innermost)."""
    owners = [owner(frame.filename) for frame in reversed(traceback)]  # innermost first
    direct = owners[0] if owners else "?"
    for name in owners:
        if not name.startswith(PASSTHROUGH):
            return name if name == direct else f"{name} (via {direct})"
    return direct


def write_report(*_: object) -> None:
    snapshot = tracemalloc.take_snapshot()
    sizes: Counter[str] = Counter()
    for stat in snapshot.statistics("traceback"):
        sizes[charged(stat.traceback)] += stat.size
    total = sum(sizes.values())
    lines = [f"traced live memory: {total / 2**20:.1f} MiB"]
    lines += [f"{size / 2**20:8.1f} MiB  {name}" for name, size in sizes.most_common(TOP)]
    path = os.environ["GITSTAGE_TRACE_OUT"]
    with open(path + ".tmp", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def on_signal(signum: int, frame: FrameType | None) -> None:
    write_report()


def main() -> int:
    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR2, on_signal)
    from gitstage.cli.entry import main as gitstage_main

    sys.argv = ["gitstage", *sys.argv[1:]]
    gitstage_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())

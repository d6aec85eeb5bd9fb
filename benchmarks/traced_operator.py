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
    if os.environ.get("GITSTAGE_TRACE_HOLDERS"):
        import gc

        # gc.get_objects() does not list frozen objects: the operator's kept states, and all
        # that was alive when a read froze them. The report is the traced process's end.
        gc.unfreeze()
        lines += decoded_holders()
        lines += decoded_parts_held()
    path = os.environ["GITSTAGE_TRACE_OUT"]
    with open(path + ".tmp", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def from_decoder(obj: object) -> bool:
    """Whether the JSON decoder allocated `obj`."""
    trace = tracemalloc.get_object_traceback(obj)
    return trace is not None and "json" in trace[0].filename


def decoded_holders() -> list[str]:
    """Who keeps decoded JSON: each top-level document the decoder made (a dict or list no other
    decoded object holds), counted with its deep size by what refers to it."""
    import gc

    decoded = [o for o in gc.get_objects() if isinstance(o, dict | list) and from_decoder(o)]
    inner = {id(child) for o in decoded for child in gc.get_referents(o)}
    roots = [o for o in decoded if id(o) not in inner]
    held: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for root in roots:
        holder = describe_holders(gc.get_referrers(root), decoded)
        held[holder] += deep_size(root)
        counts[holder] += 1
    lines = [f"decoded JSON: {len(decoded)} containers, {len(roots)} documents, held by:"]
    lines += [
        f"{size / 2**20:8.1f} MiB  {counts[name]:6d} documents  {name}"
        for name, size in held.most_common(TOP)
    ]
    return lines


def decoded_parts_held() -> list[str]:
    """Who keeps parts of decoded JSON (strings, and dicts and lists the collector does not
    track) after their document is gone: each tracked object holding such parts, directly or
    through untracked containers of its own (an instance's all-string `__dict__`, a tuple),
    charged with their deep size by its type and where it was allocated. A part counts once."""
    import gc

    seen: set[int] = set()

    def held_through(container: object) -> int:
        size, stack = 0, list(gc.get_referents(container))
        while stack:
            part = stack.pop()
            if id(part) in seen or gc.is_tracked(part):
                continue  # a tracked container is a holder of its own
            seen.add(id(part))
            if from_decoder(part):
                size += deep_size(part)
            elif isinstance(part, dict | list | tuple | set | frozenset):
                stack.extend(gc.get_referents(part))
        return size

    held: Counter[str] = Counter()
    for holder in gc.get_objects():
        if isinstance(holder, FrameType) or from_decoder(holder):
            continue
        size = held_through(holder)
        if size:
            trace = tracemalloc.get_object_traceback(holder)
            where = f"{owner(trace[0].filename)}:{trace[0].lineno}" if trace else "?"
            held[f"{type(holder).__qualname__} made at {where}"] += size
    lines = ["parts of decoded JSON outliving their documents, by holder:"]
    lines += [f"{size / 2**20:8.1f} MiB  {name}" for name, size in held.most_common(TOP)]
    return lines


def describe_holders(referrers: list[object], decoded: list[object]) -> str:
    import gc

    names = []
    for referrer in referrers:
        if referrer is decoded or isinstance(referrer, FrameType):
            continue
        name = type(referrer).__qualname__
        if isinstance(referrer, dict):  # an instance's or a module's namespace: name its owner
            owners = [o for o in gc.get_referrers(referrer) if o is not decoded]
            owner_names = sorted({type(o).__qualname__ for o in owners})[:2]
            name = f"dict in {','.join(owner_names)}"
        names.append(name)
    return " | ".join(sorted(set(names))) or "(no referrer)"


def deep_size(root: object) -> int:
    import gc

    seen, stack, total = set(), [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict | list):
            stack.extend(gc.get_referents(obj))
    return total


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

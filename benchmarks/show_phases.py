"""Where `gitstage show --json` spends its time, phase by phase, on show_bench.py's registries.

Runs the steps of an incremental read (reading.py's `incremental_document`) one by one, in
process, timing each, for three states: cold (no cache), full (object cache warm, every artifact
refolded: the `objects` state of show_bench.py) and changed (one new stage tag: one artifact
refolded). Imports and the interpreter's start are not included (see show_bench.py).

    PYTHONPATH=operator:. python benchmarks/show_phases.py [--registry large] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from benchmarks.show_bench import LARGE, SMALL, Promotion, cached_registry

from gitstage.adapters.git.incremental import fold_groups, open_context, prefetch
from gitstage.adapters.git.object_cache import ObjectCache
from gitstage.adapters.git.reader import ObjectReader
from gitstage.adapters.git.source import open_source
from gitstage.domain.registry.gto_json import artifact_row, document_from_rows
from gitstage.domain.registry.names import tag_to_name
from gitstage.domain.registry.partition import group_digest, group_tags, with_head_artifacts
from gitstage.domain.registry.views import ViewOptions, artifact_stages

T = TypeVar("T")


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, step: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = step()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        return result


def one_read(repo: Path, refold: str) -> Phases:
    """`refold`: "all" (every artifact) or "changed" (only groups whose refs differ from the
    last call's, as the row cache would know them)."""
    phases = Phases()
    gc.disable()
    try:
        source = phases.run(
            "list refs (packed-refs, loose refs, HEAD, .gto)", lambda: open_source(repo)
        )
        dirs = source.dirs
        cache = ObjectCache.open_lazily(dirs.common_dir)
        phases.run("load the object cache", lambda: cache._loaded)
        objects = ObjectReader(dirs.git_dir, cache, None, dirs.common_dir)
        groups = phases.run("group tags by artifact", lambda: group_tags(source.tags))
        digests = phases.run(
            "digest each group", lambda: {g: group_digest(m) for g, m in groups.items()}
        )
        previous = _LAST.get(str(repo), {})
        tagged = [g for g, d in digests.items() if refold == "all" or previous.get(g) != d]
        names = phases.run(
            "parse tag names, start git cat-file", lambda: prefetch(groups, tagged, objects)
        )
        context = phases.run(
            "HEAD and its artifacts.yaml", lambda: open_context(source, cache, None, objects)
        )
        context.names = names
        with_head_artifacts(groups, context.head_artifacts)
        digests.update((g, group_digest(m)) for g, m in groups.items() if g not in digests)
        stale = [g for g, d in digests.items() if refold == "all" or previous.get(g) != d]
        _LAST[str(repo)] = digests
        folded = phases.run(
            "read tags, fold events, enrich with commits",
            lambda: fold_groups(groups, stale, context),
        )
        objects.close()
        options = ViewOptions()
        rows = phases.run(
            "views: each artifact's line and used stages",
            lambda: {
                g: (f.order, artifact_row(f.artifact, options), artifact_stages(f.artifact))
                for g, f in folded.items()
                if f.artifact is not None
            },
        )
        present = sorted((order, g) for g, (order, _, _) in rows.items() if order is not None)
        stages = sorted({s for _, g in present for s in rows[g][2]})
        phases.run(
            "JSON",
            lambda: json.dumps(
                document_from_rows(((tag_to_name(g), rows[g][1]) for _, g in present), stages),
                indent=4,
            ),
        )
        phases.run("save the object cache", cache.save)
    finally:
        gc.enable()
    return phases


_LAST: dict[str, dict[str, bytes]] = {}


def three_reads(repo: Path) -> tuple[Phases, Phases, Phases]:
    """Cold (caches deleted first), full, and changed after one new stage tag."""
    shutil.rmtree(repo / ".git" / "gitstage", ignore_errors=True)
    _LAST.pop(str(repo), None)
    cold = one_read(repo, "all")
    full = one_read(repo, "all")
    promote = Promotion(repo)
    try:
        promote()
        changed = one_read(repo, "changed")
    finally:
        promote.undo()
    return cold, full, changed


def least(rounds: list[Phases]) -> Phases:
    """Each phase's least time over the rounds (a shared machine adds noise, never speed)."""
    phases = Phases()
    for name in rounds[0].seconds:
        phases.seconds[name] = min(r.seconds.get(name, 0.0) for r in rounds)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--registry", choices=("small", "large"), default="large")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "gitstage-show-bench"))
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds; each phase's least time is shown"
    )
    args = parser.parse_args()
    shape = LARGE if args.registry == "large" else SMALL
    repo, _ = cached_registry(shape, Path(args.cache))
    rounds = [three_reads(repo) for _ in range(args.repeat)]
    cold, full, changed = (least([r[i] for r in rounds]) for i in range(3))
    print(f"phases of one read of the {shape.name} registry ({shape.tags:,} tags), seconds")
    print(f"{'phase':50} {'cold':>8} {'full':>8} {'changed':>8}")
    for name in cold.seconds:
        figures = [p.seconds.get(name, 0.0) for p in (cold, full, changed)]
        print(f"{name:50} " + " ".join(f"{f:8.3f}" for f in figures))
    totals = [sum(p.seconds.values()) for p in (cold, full, changed)]
    print(f"{'total':50} " + " ".join(f"{f:8.3f}" for f in totals))


if __name__ == "__main__":
    main()

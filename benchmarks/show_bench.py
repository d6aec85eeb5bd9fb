"""`gitstage show --json` against `gto show --json` and against the `git for-each-ref` floor.

Two registries, each written with ONE `git fast-import` stream and cached in a temp directory
keyed by their parameters:
  small: ~2,400 tags over 20 artifacts; gitstage vs gto and vs the floor;
  large: ~120,000 tags over 500 artifacts, packed refs; gitstage vs the floor.
The floor is `git for-each-ref refs/tags` with tagger dates: git reading the same data.
The registries look like real ones: each artifact registers versions on its own commits and
promotes them dev -> staging -> prod, with occasional unassignments, deregistrations, re-assigned
rollbacks, `dir:name` artifacts, a few non-GTO release tags and an artifacts.yaml at HEAD.

gitstage is timed in four states of its caches (see MODES): cold (no cache: the first run on a
repository), objects (object cache warm, result and row caches off: a full refold), warm
(nothing changed since the last run) and changed (one new stage tag since the last run: the
incremental refold of one artifact). Each figure is compared with its target: after one new tag
at most 3x the floor (small) and 1.5x (large); cold at most 2x the floor (large). Each command's
CPU (user and system seconds, its children included) is printed beside its time, and for the
large registry the ratio no schedule of that work on this machine's cores could beat.

    PYTHONPATH=operator:. python benchmarks/show_bench.py [--repeat 5] [--gto-repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random

from tests.support.fast_import import (
    CommitSpec,
    FastImport,
    Person,
    Stamp,
    TagSpec,
    init_repo,
)

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
GENERATOR_VERSION = 3  # bump when the registry shape changes: invalidates the cache
BASE_EPOCH = 1_600_000_000
FLOOR_FORMAT = "%(refname:strip=2)%00%(objecttype)%00%(object)%00%(taggerdate:raw)"
PEOPLE = (
    Person("Registry Bot", "bot@example.com"),
    Person("Ana Data", "ana@example.com"),
    Person("CI", "ci@example.com"),
)
ZONES = ("+0000", "+0200", "-0700", "+0530")


@dataclass(frozen=True)
class Shape:
    name: str
    artifacts: int
    tags: int
    pack_refs: bool
    seed: int = 7

    def key(self) -> str:
        text = json.dumps([GENERATOR_VERSION, asdict(self)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


SMALL = Shape("small", artifacts=20, tags=2_400, pack_refs=False)
LARGE = Shape("large", artifacts=500, tags=120_000, pack_refs=True)


# -- writing a registry ------------------------------------------------------------------------


@dataclass
class _Model:
    name: str
    commits: list[int]
    counter: int = 0
    versions: list[tuple[str, int]] = field(default_factory=list)
    in_prod: list[int] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.name.replace(":", "=")


def _model_name(number: int) -> str:
    # One in five lives in a sub-project: `dir:name`, written `dir=name` in tags.
    return f"proj{number % 7}:model-{number}" if number % 5 == 0 else f"team{number % 9}/m{number}"


def _semver(number: int) -> str:
    major, rest = divmod(number, 40)
    minor, patch = divmod(rest, 8)
    return f"v{major}.{minor}.{patch}"


class _Writer:
    """Turns the registry's life into fast-import commands, tag by tag."""

    def __init__(self, shape: Shape, commits: int) -> None:
        self.rng = Random(shape.seed)
        self.clock = BASE_EPOCH
        self.written = 0
        self.commits = commits

    def stamp(self) -> Stamp:
        self.clock += self.rng.choice((0, 1, 1, 5, 30, 120, 900))
        return Stamp(self.clock, self.rng.choice(ZONES))

    def tag(self, name: str, commit: int, message: str) -> TagSpec:
        self.written += 1
        return TagSpec(name, commit + 1, self.stamp(), message, self.rng.choice(PEOPLE))

    def counted(self, model: _Model, base: str) -> str:
        model.counter += 1
        return f"{base}#{model.counter}"

    def step(self, model: _Model) -> Iterator[TagSpec]:
        """One episode of a model's life: a new version, promoted and sometimes rolled back."""
        rng = self.rng
        if len(model.versions) < len(model.commits):
            version, commit = _semver(len(model.versions)), model.commits[len(model.versions)]
            model.versions.append((version, commit))
            yield self.tag(f"{model.prefix}@{version}", commit, f"Registering {version}")
            yield self.tag(self.counted(model, f"{model.prefix}#dev"), commit, "to dev")
            if rng.random() < 0.7:
                yield self.tag(self.counted(model, f"{model.prefix}#staging"), commit, "staging")
            if rng.random() < 0.45:
                yield self.tag(self.counted(model, f"{model.prefix}#prod"), commit, "prod")
                model.in_prod.append(commit)
            return
        # Every version is registered: maintenance on old ones.
        version, commit = rng.choice(model.versions)
        roll = rng.random()
        if roll < 0.4 and model.in_prod:
            yield self.tag(self.counted(model, f"{model.prefix}#prod!"), model.in_prod.pop(), "x")
        elif roll < 0.5:
            yield self.tag(self.counted(model, f"{model.prefix}@{version}!"), commit, "deregister")
        else:
            yield self.tag(self.counted(model, f"{model.prefix}#prod"), commit, "rollback")

    def tags(self, models: list[_Model], total: int) -> Iterator[TagSpec]:
        while self.written < total:
            for model in self.rng.sample(models, len(models)):
                for tag in self.step(model):
                    yield tag
                    if self.written >= total:
                        return
            if self.rng.random() < 0.2 and self.written < total:  # the project's own releases
                yield self.tag(f"release-{self.written}", self.rng.randrange(self.commits), "")


def write_registry(shape: Shape, path: Path) -> None:
    rng = Random(shape.seed)
    tags_per_model = shape.tags / shape.artifacts
    versions_per_model = max(1, math.ceil(tags_per_model / 3))
    commits = max(versions_per_model * 2, shape.artifacts * versions_per_model // 4)
    models = [
        _Model(_model_name(n), sorted(rng.sample(range(commits), versions_per_model)))
        for n in range(shape.artifacts)
    ]
    writer = _Writer(shape, commits)
    seconds_per_commit = int(60 * tags_per_model * shape.artifacts) // commits
    head_yaml = "".join(
        f"{m.name}:\n  type: model\n  path: models/{m.name}.pkl\n"
        for m in models[:10]
        if ":" not in m.name
    )
    init_repo(path)
    with FastImport(path) as stream:
        for number in range(commits):
            files: dict[str, str | None] = {"train.log": f"run {number}\n"}
            if number == commits - 1:
                files["artifacts.yaml"] = head_yaml
            when = Stamp(BASE_EPOCH + number * seconds_per_commit - 3600, "+0100")
            stream.commit(CommitSpec(number + 1, when, f"train {number}", files))
        for tag in writer.tags(models, shape.tags):
            stream.tag(tag)
            if writer.written % 20_000 == 0:
                progress(f"  {shape.name}: {writer.written:,} tags streamed")
        stream.close()
    if shape.pack_refs:
        subprocess.run(["git", "-C", str(path), "pack-refs", "--all"], check=True)


def cached_registry(shape: Shape, cache: Path) -> tuple[Path, float]:
    """The registry for `shape`, written unless cached; and the seconds writing it took."""
    path = cache / f"{shape.name}-{shape.key()}"
    marker = path / ".complete"
    if marker.exists():
        return path, float(marker.read_text())
    for stale in cache.glob(f"{shape.name}-*"):  # older parameters or generator versions
        shutil.rmtree(stale, ignore_errors=True)
    progress(f"writing the {shape.name} registry ({shape.tags:,} tags) into {path} ...")
    started = time.perf_counter()
    write_registry(shape, path)
    seconds = time.perf_counter() - started
    marker.write_text(f"{seconds:.3f}\n")
    return path, seconds


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Timing:
    label: str
    runs: list[float]
    output: str = ""
    cpu: list[float] = field(default_factory=list)  # user + system seconds of each run

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def least_cpu(self) -> float:
        return min(self.cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(
    label: str,
    command: list[str],
    repeat: int,
    env: dict[str, str] | None = None,
    before_each: Callable[[], None] | None = None,
) -> Timing:
    runs, cpu, output = [], [], ""
    for number in range(repeat):
        if before_each is not None:
            before_each()
        cpu_before = children_cpu()
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, env=env, check=False)
        runs.append(time.perf_counter() - started)
        cpu.append(children_cpu() - cpu_before)
        if proc.returncode != 0:
            raise RuntimeError(f"{label} failed: {proc.stderr.decode(errors='replace')[-500:]}")
        output = proc.stdout.decode()
        progress(f"  {label}: run {number + 1}/{repeat} {runs[-1]:.3f}s")
    return Timing(label, runs, output, cpu)


def children_cpu() -> float:
    """User and system seconds of every process waited for so far: a command's own children
    (git, gitstage's parser) count once the command has waited for them."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


PYCACHE = Path(tempfile.gettempdir()) / "gitstage-show-bench-pycache"


def gitstage_env(**extra: str) -> dict[str, str]:
    """This checkout's package, run from bytecode as an installed wheel is (pip compiles it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, **extra}


def compile_gitstage() -> None:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "operator" / "gitstage")],
        env=gitstage_env(),
        check=True,
    )


def gitstage_command() -> list[str]:
    """The `gitstage` console script as users run it; `python -m gitstage` without one."""
    script = VENV_BIN / "gitstage"
    if script.is_file() and "gitstage.cli.entry" in script.read_text(errors="replace"):
        return [str(script)]
    return [sys.executable, "-m", "gitstage"]


def drop_caches(repo: Path) -> Callable[[], None]:
    """Delete gitstage's caches of `repo` (object cache and result cache): a cold run."""
    return lambda: shutil.rmtree(repo / ".git" / "gitstage", ignore_errors=True)


# Four states of gitstage's caches in the repository's git dir (the OS page cache stays warm):
#   cold:    no cache at all (the first run on a repository): every tag object read via libgit2;
#   objects: the object cache is warm but the result and row caches are off: the fold and views
#            run in full over every artifact (objects come from the cache);
#   changed: every cache warm, and one new stage tag pushed since the last run (`git tag -a`
#            before each timed run): what a CI job or the operator pays after a promotion;
#   warm:    both warm, nothing changed since the last run: the stamps of the ref files are
#            checked, no ref is listed (the registries are older than the racy window).
MODES = ("cold", "objects", "warm", "changed")  # changed last: its tag deletions are racy
TARGETS = {  # mode -> (small: max times the floor, large: max times the floor)
    "cold": (None, 2.0),
    "changed": (3.0, 1.5),
}


def gitstage_modes(
    figures: Figures, registry: str, repo: Path, repeat: int, reference: str | None
) -> dict[str, Timing]:
    timings = {}
    for mode in MODES:
        progress(f"{registry} registry: gitstage show --json ({mode})")
        env = gitstage_env(GITSTAGE_RESULT_CACHE="off") if mode == "objects" else gitstage_env()
        before = drop_caches(repo) if mode == "cold" else None
        promote = Promotion(repo) if mode == "changed" else None
        if promote is not None:
            before = promote
        if mode != "cold":
            subprocess.run(gitstage_show(repo), env=env, capture_output=True, check=True)
        try:
            timing = timed(
                f"gitstage show --json ({mode})", gitstage_show(repo), repeat, env, before
            )
            if promote is not None:
                full = subprocess.run(
                    gitstage_show(repo),
                    env=gitstage_env(GITSTAGE_CACHE="off"),
                    capture_output=True,
                    check=True,
                ).stdout.decode()
                figures.notes.append(
                    f"{registry} changed: the incremental document is "
                    f"{'' if full == timing.output else 'NOT '}identical to a full read's"
                )
        finally:
            if promote is not None:
                promote.undo()
        if reference is not None and mode != "changed":
            same = timing.output == reference
            figures.notes.append(
                f"{registry} {mode}: gitstage's JSON is {'' if same else 'NOT '}identical to gto's"
            )
        figures.add(f"{registry}.gitstage.{mode}", timing)
        timings[mode] = timing
    return timings


class Promotion:
    """Before each call, one new annotated stage tag on a registered version (a promotion as
    `gto assign` writes it); `undo` deletes them, so the cached registry stays as generated."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.added: list[str] = []
        listing = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "for-each-ref",
                "--count=1",
                "--format=%(refname:strip=2)",
                "refs/tags/*@v*",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.artifact, self.version = listing.split("@", 1)

    def __call__(self) -> None:
        name = f"{self.artifact}#bench#{len(self.added) + 1}"
        subprocess.run(
            [
                "git",
                "-C",
                str(self.repo),
                "tag",
                "-a",
                "-m",
                name,
                name,
                f"{self.artifact}@{self.version}^{{commit}}",
            ],
            check=True,
        )
        self.added.append(name)

    def undo(self) -> None:
        if self.added:
            subprocess.run(
                ["git", "-C", str(self.repo), "tag", "-d", *self.added],
                capture_output=True,
                check=True,
            )


def gitstage_show(repo: Path) -> list[str]:
    return [*gitstage_command(), "show", "--json", "-r", str(repo)]


def gitstage_unavailable() -> str | None:
    proc = subprocess.run(
        [*gitstage_command(), "show", "--help"],
        capture_output=True,
        env=gitstage_env(),
        check=False,
    )
    return None if proc.returncode == 0 else "unavailable"


# -- the report --------------------------------------------------------------------------------


@dataclass
class Figures:
    tags: dict[str, int]
    generation_seconds: dict[str, float]
    timings: dict[str, dict[str, object]] = field(default_factory=dict)
    ratios: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, timing: Timing | None) -> None:
        self.timings[key] = (
            {"min": None, "median": None, "runs": [], "status": "unavailable"}
            if timing is None
            else {
                "min": timing.best,
                "median": timing.median,
                "runs": timing.runs,
                "cpu_min": timing.least_cpu,
            }
        )


def count_tags(repo: Path) -> int:
    out = subprocess.run(
        ["git", "-C", str(repo), "for-each-ref", "--format=x", "refs/tags"],
        capture_output=True,
        check=True,
    ).stdout
    return out.count(b"\n")


def run(args: argparse.Namespace) -> Figures:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    small, small_seconds = cached_registry(SMALL, cache)
    large, large_seconds = cached_registry(LARGE, cache)
    figures = Figures(
        tags={"small": count_tags(small), "large": count_tags(large)},
        generation_seconds={"small": small_seconds, "large": large_seconds},
    )
    missing = gitstage_unavailable()
    compile_gitstage()
    figures.notes.append(f"gitstage run as: {' '.join(gitstage_command())} (from bytecode)")

    progress("small registry: gto show --json")
    gto = timed(
        "gto show --json",
        [str(VENV_BIN / "gto"), "show", "--json", "-r", str(small)],
        args.gto_repeat,
    )
    figures.add("small.gto", gto)
    if not missing:
        small_runs = gitstage_modes(figures, "small", small, args.repeat, gto.output)
        for mode, timing in small_runs.items():
            figures.ratios[f"small.gto_over_gitstage.{mode}"] = gto.best / timing.best

    small_floor = floor_timing(figures, "small", small, args.repeat)
    if not missing:
        for mode, timing in small_runs.items():
            figures.ratios[f"small.gitstage_over_floor.{mode}"] = timing.best / small_floor.best
    floor = floor_timing(figures, "large", large, args.repeat)
    if not missing:
        large_runs = gitstage_modes(figures, "large", large, args.repeat, None)
        outputs = {t.output for m, t in large_runs.items() if m != "changed"}
        figures.notes.append(
            f"large: cold, objects and warm outputs are {'' if len(outputs) == 1 else 'NOT '}"
            "identical"
        )
        for mode, timing in large_runs.items():
            figures.ratios[f"large.gitstage_over_floor.{mode}"] = timing.best / floor.best
    interpreter = timed("python -c pass", [sys.executable, "-c", "pass"], max(args.repeat, 5))
    figures.add("python.startup", interpreter)
    return figures


def floor_timing(figures: Figures, registry: str, repo: Path, repeat: int) -> Timing:
    """`git for-each-ref` listing every tag with its tagger date: reading the same data."""
    progress(f"{registry} registry: for-each-ref floor")
    command = ["git", "-C", str(repo), "for-each-ref", "refs/tags", f"--format={FLOOR_FORMAT}"]
    floor = timed("for-each-ref floor", command, repeat)
    figures.add(f"{registry}.floor", floor)
    return floor


def seconds(value: object) -> str:
    return f"{value:.3f}s" if isinstance(value, float) else "unavailable"


def print_table(figures: Figures) -> None:
    gen = figures.generation_seconds
    print(
        "registry  tags      written in   command                              "
        "min        median     CPU (least)"
    )
    rows = [
        ("small", "small.gto", "gto show --json"),
        ("small", "small.floor", "git for-each-ref (floor)"),
        *(("small", f"small.gitstage.{m}", f"gitstage show --json ({m})") for m in MODES),
        ("large", "large.floor", "git for-each-ref (floor)"),
        *(("large", f"large.gitstage.{m}", f"gitstage show --json ({m})") for m in MODES),
        ("", "python.startup", "python -c pass (interpreter start)"),
    ]
    for registry, key, label in rows:
        timing = figures.timings.get(key, {"min": None, "median": None})
        tags = f"{figures.tags[registry]:,}" if registry else ""
        written = seconds(gen[registry]) if registry else ""
        print(
            f"{registry:9} {tags:9} {written:12} {label:36} "
            f"{seconds(timing['min']):10} {seconds(timing['median']):10} "
            f"{seconds(timing.get('cpu_min'))}"
        )
    print()
    for mode in MODES:
        gto = figures.ratios.get(f"small.gto_over_gitstage.{mode}")
        parts = [f"small: {gto:.0f}x faster than gto" if gto else "small: gto unavailable"]
        for index, registry in enumerate(("small", "large")):
            ratio = figures.ratios.get(f"{registry}.gitstage_over_floor.{mode}")
            target = TARGETS.get(mode, (None, None))[index]
            text = f"{registry}: {ratio:.2f}x the floor" if ratio else f"{registry}: unavailable"
            if target is not None:
                met = ratio is not None and ratio <= target
                text += f" (target <= {target:g}x: {'met' if met else 'not met'})"
            parts.append(text)
        print(f"{mode:8} " + "; ".join(parts))
    print_cpu_bounds(figures)
    for note in figures.notes:
        print(f"note: {note}")


def print_cpu_bounds(figures: Figures) -> None:
    """The large registry's CPU over this machine's cores, against the floor: no schedule of
    the same work on these cores could finish faster (the floor is one process, one core)."""
    cores = os.cpu_count() or 1
    floor = figures.timings.get("large.floor", {}).get("min")
    for mode in MODES:
        cpu = figures.timings.get(f"large.gitstage.{mode}", {}).get("cpu_min")
        if isinstance(cpu, float) and isinstance(floor, float):
            print(
                f"large {mode}: {cpu:.3f}s of CPU over {cores} cores: "
                f"at best {cpu / cores / floor:.2f}x the floor on this machine"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (min/median)")
    parser.add_argument("--gto-repeat", type=int, default=3, help="runs of gto (slow)")
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "gitstage-show-bench"),
        help="where generated registries are kept",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    figures = run(args)
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    else:
        print_table(figures)


if __name__ == "__main__":
    main()

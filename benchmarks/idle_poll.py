"""Cost of polling a registry repository: an idle poll against a full clone, at the server.

A registry of a few thousand GTO tags (one commit per version, each carrying artifacts.yaml and
a model file of --payload-kib) is written with ONE `git fast-import`, served over smart HTTP on
loopback with Basic auth (`uploadpack.allowFilter` on), and measured at the server (body bytes
served, HTTP requests, git commands) and by wall time (median of --repeat rounds):

  full clone     `git clone --bare` of the repository (what `gto -r URL` does on every call)
  cold sync      RemoteMirror.sync() on an empty cache (blobless + artifacts.yaml blobs)
  idle sync      RemoteMirror.sync() with nothing new: one ref listing
  one new tag    RemoteMirror.sync() after pushing one stage tag
  registry read  RemoteMirror.registry() on the warm cache (not part of a poll; for scale)

    PYTHONPATH=operator:. python benchmarks/idle_poll.py [--versions 1000] [--payload-kib 64]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from random import Random

from tests.support.fast_import import CommitSpec, FastImport, Stamp, TagSpec, init_repo
from tests.support.git_server import CountingGitServer

from gitstage.adapters.git.credentials import GitCredentials, git_environment
from gitstage.adapters.mirror.remote_mirror import RemoteMirror
from gitstage.dev.git_server import BasicAuth

USER, PASSWORD = "bench", "bench-secret"
BASE_EPOCH = 1_650_000_000


@dataclass(frozen=True)
class Cost:
    step: str
    seconds: float
    bytes: int
    requests: int
    commands: dict[str, int]


def _payload(rng: Random, kib: int) -> str:
    return rng.randbytes(kib * 512).hex()  # hex: 2 chars a byte, barely compressible


def write_registry(path: Path, versions: int, artifacts: int, payload_kib: int) -> int:
    """One commit per version, round-robin over artifacts; returns the number of tags."""
    init_repo(path)
    rng = Random(11)
    names = [f"model-{n}" for n in range(artifacts)]
    index = "".join(f"{name}:\n  type: model\n  path: models/{name}.bin\n" for name in names)
    clock, tags = BASE_EPOCH, 0
    with FastImport(path) as stream:
        for number in range(versions):
            clock += 60
            name = names[number % artifacts]
            files = {"artifacts.yaml": index, f"models/{name}.bin": _payload(rng, payload_kib)}
            stream.commit(CommitSpec(number + 1, Stamp(clock), f"train {name}", files))
            semver = f"v{number // artifacts // 10}.{number // artifacts % 10}.0"
            for suffix in (f"@{semver}", f"#dev#{number}", f"#prod#{number}"):
                if suffix.startswith("#prod") and number % 3:
                    continue
                clock += 1
                stream.tag(TagSpec(f"{name}{suffix}", number + 1, Stamp(clock), "gto"))
                tags += 1
        stream.close()
    return tags


def serve(work: Path, root: Path) -> Path:
    bare = root / "registry.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    subprocess.run(["git", "-C", str(bare), "gc", "-q"], check=True)  # one pack, as a forge has
    return bare


def measure(server: CountingGitServer, step: str, action: Callable[[], object]) -> Cost:
    sent, requests = server.stats.bytes_sent, server.stats.requests
    commands = server.commands.copy()
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    return Cost(
        step,
        elapsed,
        server.stats.bytes_sent - sent,
        server.stats.requests - requests,
        dict(server.commands - commands),
    )


def full_clone(url: str, dest: Path, scratch: Path) -> None:
    env = git_environment(os.environ, GitCredentials(USER, PASSWORD), scratch)
    subprocess.run(["git", "clone", "-q", "--bare", url, str(dest)], env=env, check=True)


def push_stage_tag(work: Path, bare: Path, number: int) -> None:
    env = {
        **os.environ,
        "GIT_COMMITTER_NAME": "Ana",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
        "GIT_COMMITTER_DATE": f"{BASE_EPOCH + 10_000_000 + number} +0000",
    }
    name = f"model-0#prod#{100_000 + number}"
    subprocess.run(
        ["git", "-C", str(work), "tag", "-a", name, "-m", "promote", "main~3"], env=env, check=True
    )
    subprocess.run(
        ["git", "-C", str(work), "push", "-q", str(bare), f"refs/tags/{name}"], check=True
    )


def median_cost(costs: list[Cost]) -> Cost:
    """Medians of time and bytes (packs vary by a few bytes); commands as in the first round."""
    first = costs[0]
    seconds = statistics.median(c.seconds for c in costs)
    sent = int(statistics.median(c.bytes for c in costs))
    return Cost(first.step, seconds, sent, first.requests, first.commands)


def run(args: argparse.Namespace) -> list[Cost]:
    with tempfile.TemporaryDirectory(prefix="gitstage-idle-poll-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        print(f"writing {args.versions} versions ...", file=sys.stderr, flush=True)
        tags = write_registry(tmp / "work", args.versions, args.artifacts, args.payload_kib)
        bare = serve(tmp / "work", tmp / "srv")
        size = sum(f.stat().st_size for f in bare.rglob("*") if f.is_file())
        print(
            f"registry: {tags} tags, {args.versions} commits, {size / 1e6:.1f} MB on disk "
            f"(written in {time.perf_counter() - started:.1f}s)",
            file=sys.stderr,
        )
        server = CountingGitServer(tmp / "srv", auth=BasicAuth(USER, PASSWORD))
        server.start()
        try:
            return measure_all(server, tmp, bare, args.repeat)
        finally:
            server.stop()


def measure_all(server: CountingGitServer, tmp: Path, bare: Path, repeat: int) -> list[Cost]:
    url = server.url("registry.git")
    credentials = GitCredentials(USER, PASSWORD)
    clones: list[Cost] = []
    colds: list[Cost] = []
    idles: list[Cost] = []
    news: list[Cost] = []
    reads: list[Cost] = []
    for n in range(repeat):
        print(f"round {n + 1}/{repeat} ...", file=sys.stderr, flush=True)
        clone = functools.partial(full_clone, url, tmp / f"clone-{n}.git", tmp)
        clones.append(measure(server, "full clone", clone))
        mirror = RemoteMirror(url, credentials, tmp / f"cache-{n}")
        colds.append(measure(server, "cold sync", mirror.sync))
        idles.append(measure(server, "idle sync", mirror.sync))
        push_stage_tag(tmp / "work", bare, n)
        news.append(measure(server, "one new tag", mirror.sync))
        reads.append(measure(server, "registry read", mirror.registry))
    return [median_cost(c) for c in (clones, colds, idles, news, reads)]


def report(costs: list[Cost]) -> None:
    print(f"{'step':<14} {'seconds':>8} {'bytes':>12} {'requests':>9}  git commands")
    for cost in costs:
        commands = ", ".join(f"{k}={v}" for k, v in sorted(Counter(cost.commands).items()))
        print(
            f"{cost.step:<14} {cost.seconds:>8.3f} {cost.bytes:>12,} {cost.requests:>9}  {commands}"
        )
    by_step = {c.step: c for c in costs}
    clone, idle = by_step["full clone"], by_step["idle sync"]
    print(
        f"idle poll / full clone: {idle.bytes / clone.bytes:.2%} of the bytes, "
        f"{idle.seconds / clone.seconds:.2%} of the time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--artifacts", type=int, default=10)
    parser.add_argument("--payload-kib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5, help="rounds; times are medians")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    costs = run(args)
    if args.json:
        print(json.dumps([asdict(c) for c in costs], indent=2))
    else:
        report(costs)


if __name__ == "__main__":
    main()

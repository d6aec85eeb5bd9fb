"""Scale: many ModelRegistries over shared repositories; time to Ready, RSS, idle cost.

--repos registry repositories, each with --artifacts artifacts (one commit registering v1.0.0 of
each and assigning it to prod: two annotated tags per artifact), served over smart HTTP with
Basic auth by a server that counts git commands. --registries ModelRegistries are created at
once, round-robin over the repositories, each serving one artifact's prod stage with one replica
(a different artifact per registry of a repository). `gitstage operator` runs as a subprocess.

Figures:
  time until all Ready    from the first create to the newest Ready condition's
                          lastTransitionTime (and every Deployment's creationTimestamp)
  operator RSS            VmRSS and VmHWM (peak) of the operator process, from /proc
  API writes when idle    over --idle-seconds once all are Ready: the operator's own count
                          (gitstage_kube_api_writes_total) and, from the API server's watch,
                          MODIFIED/ADDED events on ModelRegistries and Deployments (any writer)
  git requests per poll   git commands and HTTP requests the server saw in that window, per poll
                          the operator counted (gitstage_polls_total)

  restart                 a new operator process over the same mirrors: seconds until it reports
                          every registry Ready and until it has polled every repository itself,
                          and watch events on Deployments and ModelRegistries meanwhile (want 0)
  memory profile          a second restart under tracemalloc: live memory by allocating package

    PYTHONPATH=operator:. python benchmarks/scale.py [--registries 1000 --repos 200 --artifacts 20]
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.operator_harness import (
    GROUP,
    PLURAL,
    VERSION,
    Kube,
    Memory,
    Operator,
    control_plane,
    log,
    model_registry,
    namespace_with_secret,
    operator_process,
    wait_for,
)
from kubernetes import watch
from tests.support.fast_import import CommitSpec, FastImport, Stamp, TagSpec, init_repo
from tests.support.git_server import CountingGitServer

from gitstage.dev.git_server import BasicAuth

USER, PASSWORD = "bench", "bench-pw-" + uuid.uuid4().hex[:6]
SECRET = "bench-hook-" + uuid.uuid4().hex[:8]
NAMESPACE = "scale"
BASE_EPOCH = 1_700_000_000
PODS_PER_NODE = 100  # KWOK nodes allow 110
ROOT = Path(__file__).resolve().parents[1]


def write_repositories(srv: Path, scratch: Path, repos: int, artifacts: int) -> None:
    """Each repository: one commit with artifacts.yaml, a@v1.0.0 and a#prod#1 for every a."""
    names = [f"model-{n}" for n in range(artifacts)]
    index = "".join(f"{name}:\n  type: model\n  path: models/{name}.bin\n" for name in names)
    files = {"artifacts.yaml": index} | {f"models/{n}.bin": f"weights of {n}\n" for n in names}
    for number in range(repos):
        work = scratch / f"work-{number}"
        init_repo(work)
        with FastImport(work) as stream:
            stream.commit(CommitSpec(1, Stamp(BASE_EPOCH), "register models", files))
            for offset, name in enumerate(names):
                stream.tag(TagSpec(f"{name}@v1.0.0", 1, Stamp(BASE_EPOCH + 10 + offset)))
                stream.tag(TagSpec(f"{name}#prod#1", 1, Stamp(BASE_EPOCH + 100 + offset)))
            stream.close()
        bare = srv / f"repo-{number}.git"
        _git("clone", "-q", "--bare", str(work), str(bare))
        _git("-C", str(bare), "config", "uploadpack.allowFilter", "true")


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True)


def registries(args: argparse.Namespace, server: CountingGitServer) -> list[dict[str, Any]]:
    bodies = []
    for number in range(args.registries):
        repo = number % args.repos
        artifact = f"model-{(number // args.repos) % args.artifacts}"
        url = server.url(f"repo-{repo}.git")
        bodies.append(model_registry(f"r{number}", url, args.interval, [(artifact, "prod")]))
    return bodies


def deployment_count(kube: Kube, namespace: str) -> int:
    response = kube.apps().list_namespaced_deployment(namespace, _preload_content=False)
    return len(json.loads(response.data)["items"])


def ready_count(kube: Kube, namespace: str = NAMESPACE) -> int:
    found = kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    ready = 0
    for item in found["items"]:
        conditions = (item.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            ready += 1
    return ready


class Writes:
    """Watch events on ModelRegistries and Deployments of the namespace, any writer."""

    def __init__(self, kube: Kube) -> None:
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(kind,), daemon=True)
            for kind in ("modelregistries", "deployments")
        ]
        self._kube = kube
        self._started = threading.Barrier(3)

    def _watch(self, kind: str) -> None:
        if kind == "deployments":
            listed = self._kube.apps().list_namespaced_deployment(NAMESPACE)
            version = listed.metadata.resource_version
            stream = watch.Watch().stream(
                self._kube.apps().list_namespaced_deployment,
                NAMESPACE,
                resource_version=version,
                timeout_seconds=3600,
            )
        else:
            custom = self._kube.custom()
            found = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
            version = found["metadata"]["resourceVersion"]
            stream = watch.Watch().stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                resource_version=version,
                timeout_seconds=3600,
            )
        self._started.wait()
        try:
            for event in stream:
                if self._stop.is_set():
                    return
                self.counts[f"{kind} {event['type']}"] += 1
        except Exception:
            if not self._stop.is_set():  # the cluster stopping ends the stream: not an error
                raise

    def __enter__(self) -> Writes:
        for thread in self._threads:
            thread.start()
        self._started.wait()  # both watches listed: events from here on are counted
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()


@dataclass
class Window:
    seconds: float
    api_writes: float
    watch_events: Counter[str]
    polls: float
    commands: Counter[str]
    http_requests: int
    http_denied: int


def idle_window(
    kube: Kube, operator: Operator, server: CountingGitServer, seconds: float
) -> Window:
    writes_before = operator.total("gitstage_kube_api_writes_total")
    polls_before = operator.total("gitstage_polls_total")
    commands_before = server.commands.copy()
    requests_before, denied_before = server.stats.requests, server.stats.denied
    with Writes(kube) as writes:
        started = time.monotonic()
        while (left := seconds - (time.monotonic() - started)) > 0:
            log(f"idle window: {left:.0f}s left")
            time.sleep(min(15.0, left))  # the measurement window itself
        elapsed = time.monotonic() - started
        events = Counter(writes.counts)
    return Window(
        elapsed,
        operator.total("gitstage_kube_api_writes_total") - writes_before,
        events,
        operator.total("gitstage_polls_total") - polls_before,
        server.commands - commands_before,
        server.stats.requests - requests_before,
        server.stats.denied - denied_before,
    )


def report(args: argparse.Namespace, ramp: Ramp, memory: Memory, window: Window) -> None:
    per_minute = 60.0 / window.seconds
    print(
        f"scale: {args.registries} ModelRegistries over {args.repos} repositories with "
        f"{args.artifacts} artifacts each ({args.repos * args.artifacts * 2} tags), "
        f"one Deployment of one replica per registry, poll interval {args.interval}"
    )
    print(
        f"time until all Ready: {ramp.ready:.0f} s by the registries' Ready conditions "
        f"(every Deployment created by the operator after {ramp.created:.0f} s, by their "
        f"creation stamps; seen by this harness after {ramp.seen:.1f} s)"
    )
    print(
        f"operator RSS: {memory.rss:.0f} MiB once idle ({memory.anon:.0f} MiB anonymous, "
        f"{memory.file:.0f} MiB file-backed), peak {memory.peak:.0f} MiB"
    )
    print(
        f"idle window of {window.seconds:.0f} s: {window.api_writes:.0f} API writes by the "
        f"operator ({window.api_writes * per_minute:.1f} per minute); watch events on "
        f"ModelRegistries and Deployments: {sum(window.watch_events.values())}"
        + (f" ({dict(window.watch_events)})" if window.watch_events else "")
    )
    polls = max(window.polls, 1.0)
    commands = ", ".join(f"{k} {v}" for k, v in sorted(window.commands.items())) or "none"
    print(
        f"git in that window: {window.polls:.0f} polls ({window.polls / args.repos:.1f} rounds of "
        f"{args.repos} repositories); server saw {commands}; "
        f"{sum(window.commands.values()) / polls:.2f} git commands and "
        f"{window.http_requests / polls:.2f} HTTP requests per poll "
        f"({window.http_denied / polls:.2f} of them the 401 that asks for Basic credentials)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registries", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--artifacts", type=int, default=20)
    parser.add_argument("--interval", default="30s", help="poll interval of every registry")
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--ready-timeout", type=float, default=900.0)
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the traced restart (memory profile)"
    )
    parser.add_argument(
        "--profile-settle",
        type=float,
        default=75.0,
        help="idle seconds between the traced restart's Ready and its profile (default 75)",
    )
    args = parser.parse_args()
    if args.registries < args.repos:
        parser.error("--registries must be at least --repos")
    nodes = math.ceil(args.registries / PODS_PER_NODE)
    with (
        tempfile.TemporaryDirectory(prefix="gitstage-scale-") as scratch_name,
        served_repositories(Path(scratch_name), args.repos, args.artifacts) as server,
        control_plane(Path(scratch_name) / "cluster", extra_nodes=nodes - 1) as kube,
    ):
        scratch = Path(scratch_name)
        namespace_with_secret(kube, NAMESPACE, USER, PASSWORD)
        overflows = [listen_overflows()]
        with operator_process(kube, scratch, SECRET) as operator:
            ramp = create_and_wait(
                kube, registries(args, server), args.ready_timeout, operator=operator
            )
            overflows.append(listen_overflows())
            window = idle_window(kube, operator, server, args.idle_seconds)
            memory = operator.memory()
        overflows.append(listen_overflows())
        restart = timed_restart(kube, scratch, args)
        overflows.append(listen_overflows())
        report(args, ramp, memory, window)
        print(
            "listen-queue overflows on this machine (connections the kernel dropped, each "
            f"delaying its client by TCP's SYN backoff): ramp {overflows[1] - overflows[0]}, "
            f"restart {overflows[3] - overflows[2]}"
        )
        print(
            f"operator restart: every registry Ready again {restart.seconds:.1f} s after the new "
            f"process started, every repository polled by it after {restart.polled_seconds:.1f} s;"
            f" watch events meanwhile: {restart.deployment_events} on Deployments, "
            f"{restart.registry_events} on ModelRegistries"
        )
        targets(args, ramp, memory, window, restart)
        sys.stdout.flush()
        if not args.no_profile:
            print(memory_profile(kube, scratch, args), end="")


@dataclass
class Restart:
    seconds: float  # until the new process reports every registry Ready
    polled_seconds: float  # until it has polled every repository itself
    deployment_events: int
    registry_events: int  # status writes: a restart that knows nothing new writes none


def ready_by_operator(operator: Operator) -> int:
    """Registries the operator reports Ready (0 while its metrics endpoint is too busy)."""
    return operator_counts(operator)[1]


LAST_POLL = "gitstage_last_successful_poll_timestamp_seconds"


def polled_by_operator(operator: Operator) -> int:
    """Repositories this operator process has polled successfully at least once."""
    try:
        scraped = operator.scrape()
    except OSError:
        return 0
    return sum(1 for name, _ in scraped if name == LAST_POLL)


def timed_restart(kube: Kube, scratch: Path, args: argparse.Namespace) -> Restart:
    """A new operator process over the same mirrors: until it reports every registry Ready,
    then until it has polled every repository (each registry reconciled from a fresh read)."""
    with Writes(kube) as writes, operator_process(kube, scratch, SECRET) as operator:
        started = time.monotonic()

        def ready() -> bool:
            return ready_by_operator(operator) >= args.registries

        wait_for(ready, "every registry Ready after the restart", args.ready_timeout, step=0.5)
        took = time.monotonic() - started
        wait_for(
            lambda: polled_by_operator(operator) >= args.repos,
            "every repository polled after the restart",
            args.ready_timeout,
            step=0.5,
        )
        polled = time.monotonic() - started
        wait_for(ready, "every registry still Ready once polled", args.ready_timeout, step=0.5)
        counts = writes.counts
        deployments = sum(n for kind, n in counts.items() if kind.startswith("deployments"))
        statuses = sum(n for kind, n in counts.items() if kind.startswith("modelregistries"))
    log(f"restart: all Ready after {took:.1f}s, every repository polled after {polled:.1f}s")
    return Restart(took, polled, deployments, statuses)


def memory_profile(kube: Kube, scratch: Path, args: argparse.Namespace) -> str:
    """Restart under tracemalloc, let it settle, and return where its live memory lies."""
    out = scratch / "trace.txt"
    launcher = (str(Path(__file__).with_name("traced_operator.py")),)
    env = {"GITSTAGE_TRACE_OUT": str(out), "PYTHONPATH": f"{ROOT}:{ROOT / 'operator'}"}
    with operator_process(kube, scratch, SECRET, launcher=launcher, extra_env=env) as operator:
        wait_for(
            lambda: ready_by_operator(operator) >= args.registries,
            "every registry Ready under tracemalloc",
            args.ready_timeout,
            step=1.0,
        )
        # Idle first, as the untraced figure is: kopf's workers let go of their last events
        # and a malloc trim has run (operator/trim.py).
        time.sleep(args.profile_settle)
        rss = operator.memory().rss
        operator.process.send_signal(signal.SIGUSR2)
        wait_for(lambda: out.exists() or None, "the tracemalloc report", 120, step=0.5)
        report = out.read_text()
    return f"memory profile (tracemalloc, traced process RSS {rss:.0f} MiB):\n{report}"


def targets(
    args: argparse.Namespace, ramp: Ramp, memory: Memory, window: Window, restart: Restart
) -> None:
    """Each figure beside the target of issue #20 (1,000 registries over 200 repositories)."""
    rounds = window.polls / max(args.repos, 1)
    per_interval = seconds_of(args.interval)
    expected_rounds = window.seconds / per_interval
    checks = [
        (
            "every Deployment created and every registry Ready",
            f"{ramp.ready:.0f} s",
            "<= 180 s",
            ramp.ready <= 180,
        ),
        ("operator RSS once idle", f"{memory.rss:.0f} MiB", "< 250 MiB", memory.rss < 250),
        ("API writes while idle", f"{window.api_writes:.0f}", "0", window.api_writes == 0),
        (
            "ref listings per repository per interval",
            f"{rounds / max(expected_rounds, 1e-9):.2f}",
            "one (±10% jitter, and a round at the window's edges)",
            rounds <= expected_rounds * 1.1 + 1,
        ),
        (
            "Deployment changes across a restart",
            f"{restart.deployment_events}",
            "0",
            restart.deployment_events == 0,
        ),
        (
            "ModelRegistry writes across a restart",
            f"{restart.registry_events}",
            "0 (nothing changed)",
            restart.registry_events == 0,
        ),
    ]
    for what, figure, target, met in checks:
        print(f"target: {what}: {figure} (target {target}: {'met' if met else 'not met'})")


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listener's accept queue was full."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    for header, values in zip(lines[::2], lines[1::2], strict=True):
        if header[0] == "TcpExt:" and "ListenOverflows" in header:
            return int(values[header.index("ListenOverflows")])
    return 0


def seconds_of(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


@contextmanager
def served_repositories(scratch: Path, repos: int, artifacts: int) -> Iterator[CountingGitServer]:
    """`repos` repositories written under scratch/srv, served with Basic auth while in use."""
    srv = scratch / "srv"
    srv.mkdir()
    started = time.monotonic()
    write_repositories(srv, scratch, repos, artifacts)
    log(f"{repos} repositories written in {time.monotonic() - started:.1f}s")
    server = CountingGitServer(srv, auth=BasicAuth(USER, PASSWORD))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Ramp:
    created: float  # every Deployment exists: the operator's share
    ready: float  # every ModelRegistry Ready: adds the controllers' and KWOK's work
    seen: float  # when this harness saw it: adds the lag of its progress checks


def create_and_wait(
    kube: Kube,
    bodies: list[dict[str, Any]],
    timeout: float,
    namespace: str = NAMESPACE,
    operator: Operator | None = None,
) -> Ramp:
    """Create every registry at once and wait until all are Ready.

    The figures are the objects' own timestamps: the newest Deployment's creationTimestamp and
    the newest Ready condition's lastTransitionTime, each rounded up to the next whole second
    (the API keeps seconds). Progress is followed through `operator`'s /metrics when given:
    listing 1,000 registries from the API costs its server 0.8 s of CPU, and a check a second
    took about half of the API server's CPU during the very ramp it timed.
    """
    started_at, started = time.time(), time.monotonic()
    custom = kube.custom()
    for body in bodies:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    log(f"{len(bodies)} ModelRegistries created in {time.monotonic() - started:.1f}s")
    if operator is not None:
        progress = Progress(len(bodies), started, lambda: operator_counts(operator))
        wait_for(progress.done, "every ModelRegistry Ready (by the operator)", timeout, step=5.0)
    progress = Progress(len(bodies), started, lambda: api_counts(kube, namespace))
    wait_for(progress.done, "every ModelRegistry Ready", timeout, step=1.0)
    seen = time.monotonic() - started
    created, ready = ramp_stamps(kube, namespace)
    return Ramp(created - started_at, ready - started_at, seen)


class Progress:
    """A check that logs (Deployments, Ready registries) whenever they change."""

    def __init__(self, total: int, started: float, counts: Callable[[], tuple[int, int]]):
        self.total, self.started, self.counts = total, started, counts
        self.last = (-1, -1)

    def done(self) -> bool:
        deployments, ready = self.counts()
        if (deployments, ready) != self.last:
            elapsed = time.monotonic() - self.started
            log(f"after {elapsed:.1f}s: {deployments} Deployments, {ready}/{self.total} Ready")
            self.last = (deployments, ready)
        return ready == self.total


def operator_counts(operator: Operator) -> tuple[int, int]:
    """Deployments the operator created and registries it reports Ready (0, 0 while busy).

    A scan of the exposition's lines: parsing its 1,000s of samples every check cost this
    harness a core-minute over a ramp."""
    try:
        text = operator.exposition()
    except OSError:  # a timeout or a refused connection: ask again
        return 0, 0
    created = ready = 0.0
    for line in text.splitlines():
        if line.startswith("gitstage_registry_ready{"):
            ready += float(line.rsplit(" ", 1)[1])
        elif line.startswith(CREATED) and 'transition="Created"' in line:
            created += float(line.rsplit(" ", 1)[1])
    return int(created), int(ready)


CREATED = "gitstage_rollout_transitions_total{"


def api_counts(kube: Kube, namespace: str) -> tuple[int, int]:
    return deployment_count(kube, namespace), ready_count(kube, namespace)


def ramp_stamps(kube: Kube, namespace: str) -> tuple[float, float]:
    """Epoch seconds by which every Deployment existed and every registry was Ready."""
    found = kube.apps().list_namespaced_deployment(namespace, _preload_content=False)
    created = [item["metadata"]["creationTimestamp"] for item in json.loads(found.data)["items"]]
    registries = kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    ready = [
        condition["lastTransitionTime"]
        for item in registries["items"]
        for condition in item["status"]["conditions"]
        if condition["type"] == "Ready"
    ]
    return max(map(epoch, created)) + 1, max(map(epoch, ready)) + 1


def epoch(stamp: str) -> float:
    """An API timestamp (`2026-12-03T15:40:00Z`) as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    sys.exit(main())

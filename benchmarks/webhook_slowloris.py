"""The operator under a slowloris of 1,000 connections on its webhook port: reconcile latency
with and without the attack, and how long a signed delivery waits for its 202 during it.

The attack (benchmarks/slowloris_attack.py, a process of its own): 1,000 connections from
127.0.0.1 that send a request line and a header line per --cycle seconds and never end their
headers; each one the server drops is opened again after --cycle.

Part `operator`: a local control plane (KWOK), a loopback smart-HTTP git server and
`gitstage operator` as a subprocess (benchmarks/operator_harness.py), one ModelRegistry serving
`churn#prod` with an hour-long interval. A reconcile round pushes the next prod assignment and
sets `gitstage.dev/requestedAt`: kopf's watch, the worker, a poll, the reconcile, the Deployment.
Its latency runs from the annotation's patch to the watch event showing the new commit. Rounds
run quiet, under the attack, then with the same attack aimed at the same listener in another
process (benchmarks/webhook_sink.py): on a shared machine the attacker's own CPU slows
everything, and that third phase measures it, so the second against the third is the
operator's own share. Signed GitHub deliveries (a new connection each) come from 127.0.0.2, a
forge at another address, and from 127.0.0.1, the attacker's address (what every peer is behind
a proxy).

Part `loop`: the event loop alone, in this process, for the three ways to serve webhooks: as main
did (aiohttp on the operator's loop, no limits), guarded on the operator's loop, guarded on a
thread of its own (this branch). A stand-in for the operator's work runs on the loop: a 10 ms
timer (its lateness) and an API call every 50 ms (a connection to a loopback HTTP server and a
file read). The process's open-file limit is --nofile (1024, as in issue 16's reproduction), and
it holds --operator-descriptors more (64; an idle operator's own, see part `operator`).

    PYTHONPATH=operator:. python benchmarks/webhook_slowloris.py [--parts operator,loop]
        [--connections 1000] [--cycle 1] [--rounds 30] [--deliveries 20]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import logging
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.operator_harness import (
    GROUP,
    PLURAL,
    ROOT,
    VERSION,
    Kube,
    Operator,
    control_plane,
    log,
    model_registry,
    namespace_with_secret,
    operator_process,
    percentile,
    wait_for,
)
from benchmarks.push_latency import (
    NAMESPACE,
    PASSWORD,
    SECRET,
    USER,
    Repo,
    Seen,
    push_assignment,
    wait_commit,
    watch_deployments,
    write_repo,
)
from tests.support import forge_payloads as fp
from tests.support.ports import reserve_port

from gitstage.dev.git_server import BasicAuth, GitHttpServer
from gitstage.operator import endpoints
from gitstage.operator.rejections import BURST, WINDOW
from gitstage.operator.settings import DESCRIPTOR_RESERVE, LISTEN_BACKLOG, WebhookLimits
from gitstage.operator.webhook_server import WebhookServer, listen
from gitstage.operator.webhooks import WebhookReceiver
from gitstage.operator.worker import REQUESTED_AT

NAME = "hooked"  # in push_latency's NAMESPACE, which its Deployment watch follows
FORGE, ATTACKER = "127.0.0.2", "127.0.0.1"
LATENCY_RATIO = 1.5  # target: latencies under attack within 1.5x of quiet
DELIVERY_TARGET = 1.0  # seconds: a forge's delivery answered within this (GitHub waits 10 s)
LIMITS = WebhookLimits()


# --- shared: the attacker, deliveries, figures ---------------------------------------------------


class Slowloris:
    """benchmarks/slowloris_attack.py in a subprocess, from `start` (its connections opened) to
    `stop` (its counts)."""

    def __init__(self, port: int, args: argparse.Namespace) -> None:
        self._command = [sys.executable, "-m", "benchmarks.slowloris_attack", f"--port={port}"]
        self._command += [f"--connections={args.connections}", f"--cycle={args.cycle}"]
        self._process: subprocess.Popen[str] | None = None
        self.connected = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}"}
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if line[:1] != ["ready"]:
            raise SystemExit("error: the slowloris did not start")
        self.connected = int(line[1])

    def stop(self) -> dict[str, int]:
        assert self._process is not None
        self._process.terminate()
        out, _ = self._process.communicate(timeout=60)
        counts: dict[str, int] = json.loads(out.strip().splitlines()[-1])
        return counts


@contextmanager
def sink() -> Iterator[int]:
    """benchmarks/webhook_sink.py in a subprocess: the port of a listener that is not the
    operator's."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}"}
    command = [sys.executable, "-m", "benchmarks.webhook_sink"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert process.stdout is not None
        word, _, port = process.stdout.readline().partition(" ")
        if word != "listening":
            raise SystemExit("error: the webhook sink did not start")
        yield int(port)
    finally:
        process.terminate()
        process.wait(timeout=30)


def deliver(port: int, source: str) -> tuple[int, float]:
    """One signed GitHub push on a new connection from `source`: (status, seconds to answer)."""
    url = f"http://127.0.0.1:{port}/x.git"
    repo = fp.ForgeRepo(url, "git@127.0.0.1:x.git", url)
    delivery = fp.github_push(repo, "refs/tags/churn#prod#1", "ab" * 20, SECRET.encode())
    started = time.monotonic()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(source, 0)
    )
    try:
        connection.request("POST", delivery.path, delivery.body, delivery.headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        status = 0  # reset or refused before an answer
    finally:
        connection.close()
    return status, time.monotonic() - started


def deliveries(port: int, source: str, count: int) -> list[tuple[int, float]]:
    return [deliver(port, source) for _ in range(count)]


def ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    scaled = [v * 1000 for v in values]
    return (
        f"p50 {percentile(scaled, 0.5):7.1f} ms  p95 {percentile(scaled, 0.95):7.1f} ms  "
        f"max {max(scaled):7.1f} ms"
    )


def ratio_line(label: str, quiet: list[float], attacked: list[float], *, target: bool) -> str:
    if not quiet or not attacked:
        return f"  {label}: no samples"
    p50 = percentile(attacked, 0.5) / percentile(quiet, 0.5)
    p95 = percentile(attacked, 0.95) / percentile(quiet, 0.95)
    line = f"  {label}: p50 {p50:.2f}x  p95 {p95:.2f}x"
    if target:
        met = "met" if max(p50, p95) <= LATENCY_RATIO else "NOT met"
        line += f"   target <= {LATENCY_RATIO}x: {met}"
    return line


def delivery_line(label: str, answers: list[tuple[int, float]], *, target: bool) -> str:
    accepted = [seconds for status, seconds in answers if status == 202]
    others = sorted({status for status, _ in answers if status != 202})
    line = f"  {label:<44} {len(accepted)}/{len(answers)} got 202 ({ms(accepted)})"
    if others:
        line += f"; other answers: {', '.join(str(s) if s else 'reset' for s in others)}"
    if target:
        slowest = max((seconds for _, seconds in answers), default=0.0)
        met = len(accepted) == len(answers) and slowest < DELIVERY_TARGET
        line += f"   target: all 202 within {DELIVERY_TARGET:g} s: {'met' if met else 'NOT met'}"
    return line


# --- part `operator`: the real operator on KWOK -------------------------------------------------


@dataclass
class OperatorRun:
    quiet: list[float] = field(default_factory=list)
    attacked: list[float] = field(default_factory=list)
    elsewhere: list[float] = field(default_factory=list)  # the attack aimed at another process
    quiet_deliveries: list[tuple[int, float]] = field(default_factory=list)
    forge: list[tuple[int, float]] = field(default_factory=list)
    same_address: list[tuple[int, float]] = field(default_factory=list)
    descriptors: list[int] = field(default_factory=list)
    quiet_descriptors: int = 0
    log_lines: int = 0
    attack_seconds: float = 0.0
    attack_cpu: float = 0.0
    quiet_cpu_share: float = 0.0
    attacker: dict[str, int] = field(default_factory=dict)
    closed: dict[str, float] = field(default_factory=dict)


@dataclass
class Stage:
    """The running operator and what it serves."""

    kube: Kube
    repo: Repo
    record: Seen  # the Deployment's commits, from the watch
    op: Operator

    @property
    def webhook_port(self) -> int:
        return int(self.op.webhook_url.rsplit(":", 1)[1])


def reconcile_round(stage: Stage, number: int) -> float:
    """Push assignment `number`, ask for a poll by annotation; seconds until the Deployment."""
    push_assignment(stage.repo, number)
    started = time.monotonic()
    patch = {"metadata": {"annotations": {REQUESTED_AT: f"bench-{number}"}}}
    custom = stage.kube.custom()
    custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME, patch)
    return wait_commit(stage.record, stage.repo.commits[number], started, 120).updated


@contextmanager
def sampling(pid: int, into: list[int]) -> Iterator[None]:
    """The process's open descriptors, twice a second, while the block runs."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            into.append(len(os.listdir(f"/proc/{pid}/fd")))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def operator_phases(stage: Stage, args: Any) -> OperatorRun:
    run, op, port = OperatorRun(), stage.op, stage.webhook_port
    rounds = range(1, args.rounds + 1)
    began, cpu_began = time.monotonic(), cpu_seconds(op.process.pid)
    run.quiet = [reconcile_round(stage, n) for n in rounds]
    run.quiet_cpu_share = (cpu_seconds(op.process.pid) - cpu_began) / (time.monotonic() - began)
    run.quiet_descriptors = len(os.listdir(f"/proc/{op.process.pid}/fd"))
    run.quiet_deliveries = deliveries(port, FORGE, args.deliveries)
    log("quiet rounds done; starting the slowloris")
    before = {r: op.total("gitstage_webhook_connections_closed_total", reason=r) for r in REASONS}
    lines_before = attack_lines(op)
    cpu_before = cpu_seconds(op.process.pid)
    attack = Slowloris(port, args)
    started = time.monotonic()
    with sampling(op.process.pid, run.descriptors):
        attack.start()
        log(f"slowloris: {attack.connected} connections opened; reconciling under attack")
        run.attacked = [reconcile_round(stage, n + args.rounds) for n in rounds]
        run.forge = deliveries(port, FORGE, args.deliveries)
        run.same_address = deliveries(port, ATTACKER, args.deliveries)
        run.attacker = attack.stop()
    run.attack_seconds = time.monotonic() - started
    run.attack_cpu = cpu_seconds(op.process.pid) - cpu_before
    run.log_lines = attack_lines(op) - lines_before
    run.closed = {
        r: op.total("gitstage_webhook_connections_closed_total", reason=r) - before[r]
        for r in REASONS
    }
    log("attack on the operator done; the same attack on a listener in another process")
    with sink() as port:
        elsewhere = Slowloris(port, args)
        elsewhere.start()
        run.elsewhere = [reconcile_round(stage, n + 2 * args.rounds) for n in rounds]
        elsewhere.stop()
    return run


def log_line(lines: int, seconds: float, what: str) -> str:
    """Against the rejection log's budget: its burst, and one count per window begun."""
    allowed = BURST + math.ceil(seconds / WINDOW)
    met = "met" if lines <= allowed else "NOT met"
    return f"  {what} during {seconds:.0f} s of attack: {lines}   target <= {allowed}: {met}"


def attack_lines(op: Operator) -> int:
    """Lines the operator logged that an attack can cause: rejected webhook requests (one by one
    or counted), tracebacks and their lines, asyncio's and aiohttp's errors."""
    marks = ("request rejected", "requests rejected", "Traceback", "Error handling request")
    text = op.log_path.read_text(errors="replace")
    return sum(
        1
        for line in text.splitlines()
        if line.startswith(" ") or any(mark in line for mark in marks) or "socket.accept" in line
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc (fields 14 and 15 of stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


REASONS = ("evicted", "refused", "header_timeout", "idle_timeout", "request_timeout")


def operator_part(args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="gitstage-slowloris-") as scratch_name:
        scratch = Path(scratch_name)
        repo = write_repo(scratch, "hooked", args.rounds * 3 + 1)
        with (
            GitHttpServer(scratch / "srv", auth=BasicAuth(USER, PASSWORD)) as server,
            control_plane(scratch / "cluster") as kube,
        ):
            namespace_with_secret(kube, NAMESPACE, USER, PASSWORD)
            record = Seen()
            stop = threading.Event()
            watcher = threading.Thread(
                target=watch_deployments, args=(kube, {f"{NAME}-0": record}, stop), daemon=True
            )
            watcher.start()
            try:
                with operator_process(kube, scratch, SECRET) as op:
                    stage = Stage(kube, repo, record, op)
                    run = serve_then_measure(stage, server.url("hooked.git"), args)
            finally:
                stop.set()
    return operator_report(run, args)


def serve_then_measure(stage: Stage, url: str, args: Any) -> OperatorRun:
    body = model_registry(NAME, url, "1h", [("churn", "prod")])
    custom = stage.kube.custom()
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    wait_commit(stage.record, stage.repo.commits[0], time.monotonic(), 120)
    log(f"serving v0.0.0; {args.rounds} reconcile rounds quiet, then under attack")
    return operator_phases(stage, args)


def operator_report(run: OperatorRun, args: argparse.Namespace) -> list[str]:
    most = LIMITS.max_connections + LISTEN_BACKLOG + DESCRIPTOR_RESERVE
    peak = max(run.descriptors, default=0)
    return [
        f"the operator (KWOK), {args.rounds} reconcile rounds each, "
        f"slowloris of {args.connections} connections, cycle {args.cycle:g} s",
        f"  reconcile, quiet                             {ms(run.quiet)}",
        f"  reconcile, under attack                      {ms(run.attacked)}",
        ratio_line("reconcile under attack / quiet", run.quiet, run.attacked, target=True),
        f"  reconcile, the attack aimed elsewhere        {ms(run.elsewhere)}",
        ratio_line(
            "attack elsewhere / quiet (the machine's load)", run.quiet, run.elsewhere, target=False
        ),
        ratio_line("attack on the operator / elsewhere", run.elsewhere, run.attacked, target=True),
        delivery_line("signed delivery, quiet", run.quiet_deliveries, target=True),
        delivery_line("signed delivery, attack, forge at 127.0.0.2", run.forge, target=True),
        delivery_line(
            "signed delivery, attack, from 127.0.0.1 too", run.same_address, target=False
        ),
        f"  operator descriptors: {run.quiet_descriptors} quiet, peak {peak} during the attack"
        f"   target <= {most} "
        f"(connections + backlog + reserve): {'met' if peak <= most else 'NOT met'}",
        f"  operator CPU: {run.quiet_cpu_share:.0%} of a core quiet, "
        f"{run.attack_cpu / run.attack_seconds:.0%} during the attack",
        log_line(run.log_lines, run.attack_seconds, "rejection, traceback and error log lines"),
        "  connections the operator closed: "
        + ", ".join(f"{reason} {count:.0f}" for reason, count in run.closed.items()),
        "  the attacker: " + ", ".join(f"{k} {v}" for k, v in run.attacker.items()),
    ]


# --- part `loop`: the operator's event loop, three ways to serve webhooks ------------------------


DESIGNS = {
    "guarded, own thread (this branch)": "thread",
    "guarded, on the operator's loop": "same-loop",
    "main: on the operator's loop, no limits": "main",
}
TICK = 0.01
CALL_EVERY = 0.05


@dataclass
class Probe:
    lateness: list[float] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    errors: int = 0


async def probe(api_port: int, scratch: Path, seconds: float) -> Probe:
    """The operator's stand-in on this loop for `seconds`: a timer and API calls."""
    result = Probe()
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def timer() -> None:
        while loop.time() < end:
            began = loop.time()
            await asyncio.sleep(TICK)
            result.lateness.append(loop.time() - began - TICK)

    async def calls() -> None:
        while loop.time() < end:
            began = loop.time()
            try:
                await api_call(api_port, scratch)
                result.calls.append(loop.time() - began)
            except OSError:
                result.errors += 1
            await asyncio.sleep(CALL_EVERY)

    await asyncio.gather(timer(), calls())
    return result


async def api_call(api_port: int, scratch: Path) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api_port)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    await reader.read()
    writer.close()
    (scratch / "state").read_bytes()


@dataclass
class DesignRun:
    quiet: Probe
    attacked: Probe
    forge: list[tuple[int, float]]
    log_records: int
    connected: int


class Listener:
    """One of the three designs, started and closed on the running loop."""

    def __init__(self, design: str) -> None:
        self.design = design
        self._close: Callable[[], Any] | None = None
        self.port = 0

    async def start(self) -> None:
        receiver = WebhookReceiver(lambda notice: None, (SECRET.encode(),))
        if self.design == "thread":
            server = await WebhookServer(receiver, "127.0.0.1", 0, LIMITS).start()
            self.port, self._close = server.port, server.close
        elif self.design == "same-loop":
            listener = await listen(receiver, "127.0.0.1", 0, LIMITS)
            self.port, self._close = listener.port, listener.close
        else:
            endpoint = await endpoints.serve("webhooks", receiver.app(), "127.0.0.1", 0)
            self.port, self._close = endpoint.port, endpoint.close

    async def close(self) -> None:
        assert self._close is not None
        await self._close()


class CountRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1 + (record.exc_text or "").count("\n")  # a traceback's lines too


async def one_design(design: str, api_port: int, scratch: Path, args: Any) -> DesignRun:
    listener = Listener(design)
    await listener.start()
    quiet = await probe(api_port, scratch, args.quiet_seconds)
    records = CountRecords()
    logging.getLogger().addHandler(records)
    attack = Slowloris(listener.port, args)
    await asyncio.to_thread(attack.start)
    forge = asyncio.create_task(
        asyncio.to_thread(deliveries, listener.port, FORGE, args.deliveries)
    )
    attacked = await probe(api_port, scratch, args.attack_seconds)
    answers = await forge
    await asyncio.to_thread(attack.stop)
    logging.getLogger().removeHandler(records)
    await listener.close()
    return DesignRun(quiet, attacked, answers, records.count, attack.connected)


def loop_part(args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="gitstage-loop-") as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "state").write_bytes(b"x" * 4096)
        api_port = reserve_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(api_port)],
            cwd=scratch,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: answers(api_port), "the API stand-in", 30)
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, hard))
            logging.getLogger().setLevel(logging.INFO)  # what the operator logs (kopf's level)
            with held_descriptors(args.operator_descriptors):
                runs = {
                    label: asyncio.run(one_design(design, api_port, scratch, args))
                    for label, design in DESIGNS.items()
                }
        finally:
            api.terminate()
            api.wait()
    return loop_report(runs, args)


@contextmanager
def held_descriptors(count: int) -> Iterator[None]:
    """Descriptors the operator holds of its own (watches, mirrors, pipes), held here too."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]
    try:
        yield
    finally:
        for descriptor in held:
            os.close(descriptor)


def errors(run: Probe) -> str:
    return f"errors {run.errors}" + ("" if run.errors else " (target 0: met)")


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def loop_report(runs: dict[str, DesignRun], args: argparse.Namespace) -> list[str]:
    lines = [
        f"the operator's event loop (stand-in), open-file limit {args.nofile}, "
        f"{args.operator_descriptors} descriptors held as the operator's own, "
        f"{args.quiet_seconds:g} s quiet then {args.attack_seconds:g} s under attack"
    ]
    for label, run in runs.items():
        lines += [
            f"{label}: the slowloris had {run.connected} connections open at once",
            f"  timer lateness, quiet         {ms(run.quiet.lateness)}",
            f"  timer lateness, under attack  {ms(run.attacked.lateness)}",
            f"  API call, quiet               {ms(run.quiet.calls)}  {errors(run.quiet)}",
            f"  API call, under attack        {ms(run.attacked.calls)}  {errors(run.attacked)}",
            ratio_line(
                "API call under attack / quiet", run.quiet.calls, run.attacked.calls, target=False
            ),
            delivery_line("signed delivery, attack, forge at 127.0.0.2", run.forge, target=True),
            log_line(run.log_records, args.attack_seconds, "log lines (a traceback's each)"),
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="loop,operator")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--cycle", type=float, default=1.0, help="attack cycle, seconds")
    parser.add_argument("--rounds", type=int, default=30, help="reconcile rounds per phase")
    parser.add_argument("--deliveries", type=int, default=20, help="signed deliveries per case")
    parser.add_argument("--quiet-seconds", type=float, default=5.0)
    parser.add_argument("--attack-seconds", type=float, default=15.0)
    parser.add_argument("--nofile", type=int, default=1024, help="part loop: open-file limit")
    parser.add_argument(
        "--operator-descriptors",
        type=int,
        default=64,
        help="part loop: descriptors held besides the listener's, as an idle operator holds",
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    report: list[str] = []
    if "operator" in parts:
        report += operator_part(args)
    if "loop" in parts:
        report += loop_part(args)
    print("\n".join(report))


if __name__ == "__main__":
    main()

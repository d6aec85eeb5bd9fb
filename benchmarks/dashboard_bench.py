"""The dashboard at scale: page load time and payload, and the operator's extra memory.

--registries ModelRegistries, each following its own repository of --artifacts artifacts
(v1.0.0 of each registered and in prod, as benchmarks/scale.py writes them), one Deployment
each, on the test control plane with KWOK nodes. `gitstage operator` runs twice as a
subprocess: without the dashboard, then with it; both wait for every ModelRegistry Ready and
--settle seconds more before their RSS is read.

Figures:
  page load, HTTP        time to the whole body over loopback (built: the page built anew
                         from the snapshot; cached: served from the page cache), bytes on the wire
                         (gzip) and HTML bytes, for the models page, a model's page and the
                         rollouts page
  page load, browser     headless Chromium's navigation timing of the models page
                         (responseEnd, DOMContentLoaded, load), when Chromium is installed
  extra memory           the operator's RSS with the dashboard on, idle and after the page
                         loads, minus its RSS without the dashboard

    PYTHONPATH=operator:. python benchmarks/dashboard_bench.py [--registries 200 --artifacts 20]
"""

from __future__ import annotations

import argparse
import gzip
import math
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.operator_harness import (
    Kube,
    Memory,
    control_plane,
    log,
    model_registry,
    namespace_with_secret,
    operator_process,
    wait_for,
)
from benchmarks.scale import (
    PASSWORD,
    PODS_PER_NODE,
    SECRET,
    USER,
    create_and_wait,
    served_repositories,
)
from tests.support import browser
from tests.support.git_server import CountingGitServer
from tests.support.ports import reserve_port

from gitstage.dashboard.views import PAGE_ROWS

LOADS = 5
OFF, ON = "dashboard-off", "dashboard-on"  # one namespace per operator run
# Targets: a page a person keeps open on a laptop over an ordinary link.
TARGET_LOAD_SECONDS = 1.0
TARGET_WIRE_BYTES = 1_000_000
TARGET_EXTRA_MIB = 50.0


@dataclass
class PageFigures:
    name: str
    rendered: float  # median seconds, the page built anew (a query the cache has not seen)
    cached: float  # median seconds, the same URL again (the page cache of this generation)
    wire: int  # bytes with gzip
    html: int  # bytes of HTML


def fetch(url: str) -> tuple[float, int, int]:
    """(seconds, bytes on the wire with gzip, HTML bytes) of one GET."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})  # noqa: S310
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        body = response.read()
        encoded = response.headers.get("Content-Encoding") == "gzip"
    seconds = time.perf_counter() - started
    html = gzip.decompress(body) if encoded else body
    return seconds, len(body), len(html)


def page_figures(name: str, url: str) -> PageFigures:
    """Each `fresh=N` makes a cache miss: the page is built from the snapshot again."""
    joiner = "&" if "?" in url else "?"
    rendered = [fetch(f"{url}{joiner}fresh={n}")[0] for n in range(LOADS)]
    _, wire, html = fetch(url)
    cached = [fetch(url)[0] for _ in range(LOADS)]
    return PageFigures(name, statistics.median(rendered), statistics.median(cached), wire, html)


def browser_timing(url: str) -> dict[str, float] | None:
    """Navigation timing of `url` in headless Chromium, in seconds; None without Chromium."""
    if browser.unusable_reason() is not None:
        return None
    with browser.chromium() as driver:
        driver.get(url)  # warm the connection and the page cache
        timings = []
        for _ in range(3):
            driver.get(url)
            timings.append(
                driver.execute_script(
                    "const t = performance.getEntriesByType('navigation')[0];"
                    "return [t.responseEnd, t.domContentLoadedEventEnd, t.loadEventEnd];"
                )
            )
    medians = [statistics.median(t[i] for t in timings) / 1000 for i in range(3)]
    return dict(zip(("response", "DOMContentLoaded", "load"), medians, strict=True))


def bodies(args: argparse.Namespace, server: CountingGitServer) -> list[dict[str, Any]]:
    """One ModelRegistry per repository, serving one of its artifacts' prod stage."""
    return [
        model_registry(
            f"r{n}", server.url(f"repo-{n}.git"), "30s", [(f"model-{n % args.artifacts}", "prod")]
        )
        for n in range(args.registries)
    ]


def settled_memory(operator: Any, seconds: float) -> Memory:
    time.sleep(seconds)  # the settle window: let the reconcile bursts and the allocator calm
    memory: Memory = operator.memory()
    return memory


def dashboard_ready(url: str, registries: int) -> bool:
    """The rollouts page lists every ModelRegistry, each Deployment serving."""
    try:
        with urllib.request.urlopen(url + "rollouts", timeout=30) as response:  # noqa: S310
            page = response.read().decode()
    except OSError:
        return False
    return len(re.findall(r'data-badge="serving"', page)) == registries


@dataclass
class Run:
    off: Memory
    idle: Memory
    loaded: Memory
    pages: list[PageFigures]
    timing: dict[str, float] | None


def measure(args: argparse.Namespace, kube: Kube, server: CountingGitServer, scratch: Path) -> Run:
    """Two operators, each watching a namespace of its own and doing the same work there:
    creating every Deployment and following them to Ready; the second has the dashboard."""
    namespace_with_secret(kube, OFF, USER, PASSWORD)
    with operator_process(kube, scratch, SECRET, (f"--namespace={OFF}",)) as operator:
        create_and_wait(kube, bodies(args, server), args.ready_timeout, OFF)
        off = settled_memory(operator, args.settle)
    log(f"without the dashboard: RSS {off.rss:.0f} MiB")
    namespace_with_secret(kube, ON, USER, PASSWORD)
    port = reserve_port()
    extra = (f"--namespace={ON}", f"--dashboard-port={port}", "--dashboard-address=127.0.0.1")
    base = f"http://127.0.0.1:{port}/"
    with operator_process(kube, scratch, SECRET, extra) as operator:
        create_and_wait(kube, bodies(args, server), args.ready_timeout, ON)
        wait_for(
            lambda: dashboard_ready(base, args.registries),
            "the dashboard showing every Deployment serving",
            args.ready_timeout,
            step=2.0,
        )
        idle = settled_memory(operator, args.settle)
        repository = f"127.0.0.1:{server.port}/repo-0"
        pages = [
            page_figures("models", base),
            page_figures("model", f"{base}model?repo={repository}&artifact=model-0"),
            page_figures("rollouts", base + "rollouts"),
        ]
        timing = browser_timing(base)
        loaded = operator.memory()
    return Run(off, idle, loaded, pages, timing)


def report(args: argparse.Namespace, run: Run) -> None:
    print(
        f"\ndashboard: {args.registries} ModelRegistries x {args.artifacts} artifacts "
        f"({args.registries * args.artifacts} models-page rows, {PAGE_ROWS} a page), KWOK nodes"
    )
    print(f"{'page':<10} {'built':>9} {'cached':>9} {'on the wire':>13} {'HTML':>12}")
    for page in run.pages:
        print(
            f"{page.name:<10} {page.rendered * 1000:>7.0f}ms {page.cached * 1000:>7.0f}ms "
            f"{page.wire:>11,} B {page.html:>10,} B"
        )
    models = run.pages[0]
    met = "met" if models.rendered < TARGET_LOAD_SECONDS else "NOT met"
    print(
        f"models page built anew in {models.rendered:.3f}s "
        f"(target < {TARGET_LOAD_SECONDS:.0f}s: {met})"
    )
    met = "met" if models.wire < TARGET_WIRE_BYTES else "NOT met"
    print(f"models page on the wire {models.wire:,} B (target < {TARGET_WIRE_BYTES:,} B: {met})")
    if run.timing is None:
        print("browser timing: skipped (" + str(browser.unusable_reason()) + ")")
    else:
        parts = ", ".join(f"{k} {v * 1000:.0f}ms" for k, v in run.timing.items())
        met = "met" if run.timing["load"] < TARGET_LOAD_SECONDS else "NOT met"
        print(f"headless Chromium, models page: {parts} (target load < 1s: {met})")
    extra_idle = run.idle.rss - run.off.rss
    extra_loaded = run.loaded.rss - run.off.rss
    met = "met" if extra_loaded < TARGET_EXTRA_MIB else "NOT met"
    print(
        f"operator RSS: {run.off.rss:.0f} MiB without the dashboard, {run.idle.rss:.0f} MiB with "
        f"it (idle, {extra_idle:+.0f} MiB), {run.loaded.rss:.0f} MiB after the page loads "
        f"({extra_loaded:+.0f} MiB; target < +{TARGET_EXTRA_MIB:.0f} MiB: {met}; "
        f"peak {run.loaded.peak:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registries", type=int, default=200)
    parser.add_argument("--artifacts", type=int, default=20)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before RSS is read")
    parser.add_argument("--ready-timeout", type=float, default=900.0)
    args = parser.parse_args()
    nodes = math.ceil(2 * args.registries / PODS_PER_NODE)  # both runs' pods stay
    with (
        tempfile.TemporaryDirectory(prefix="gitstage-dashboard-") as scratch_name,
        served_repositories(Path(scratch_name), args.registries, args.artifacts) as server,
        control_plane(Path(scratch_name) / "cluster", extra_nodes=nodes - 1) as kube,
    ):
        run = measure(args, kube, server, Path(scratch_name))
    report(args, run)


if __name__ == "__main__":
    sys.exit(main())

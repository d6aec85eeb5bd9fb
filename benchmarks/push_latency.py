"""Push-to-Deployment-updated latency, with a webhook and with polling only.

A local control plane (gitstage.dev.cluster.LocalCluster, KWOK node), a loopback smart-HTTP git
server with Basic auth, and `gitstage operator` as a subprocess. Two registry repositories, each
followed by one ModelRegistry serving `churn#prod` with one replica:

  webhook   interval 1h; after each push, a signed GitHub `push` delivery of the annotated tag
  polling   interval --poll-interval; pushes arrive at a random phase of the poll cycle

Each push assigns prod to the next pre-registered version (`git tag -a churn#prod#N`, pushed to
the served bare repository). Latency runs from the moment `git push` returns to the watch event
showing the Deployment's pod template pinned to the new commit ("updated"), and to the first one
where that ReplicaSet's replicas are all updated and ready ("rolled out").

    PYTHONPATH=operator:. python benchmarks/push_latency.py [--pushes 20] [--poll-interval 10]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.operator_harness import (
    GROUP,
    PLURAL,
    VERSION,
    Kube,
    Operator,
    control_plane,
    log,
    model_registry,
    namespace_with_secret,
    operator_process,
    percentile,
    post,
)
from benchmarks.scale import PODS_PER_NODE, create_and_wait, write_repositories
from kubernetes import watch
from tests.support import forge_payloads as fp
from tests.support.fast_import import CommitSpec, FastImport, Stamp, TagSpec, init_repo
from urllib3.exceptions import ProtocolError

from gitstage.dev.git_server import BasicAuth, GitHttpServer

USER, PASSWORD = "bench", "bench-pw-" + uuid.uuid4().hex[:6]
SECRET = "bench-hook-" + uuid.uuid4().hex[:8]
NAMESPACE = "latency"
BASE_EPOCH = 1_700_000_000
COMMIT_ANNOTATION = "gitstage.dev/commit"
FILLER_ARTIFACTS = 500


@dataclass
class Seen:
    """When the watch first showed a commit in the pod template, and fully rolled out."""

    updated: dict[str, float] = field(default_factory=dict)
    rolled_out: dict[str, float] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)


def watch_deployments(kube: Kube, seen: dict[str, Seen], stop: threading.Event) -> None:
    """Record, per Deployment, the first event time of each commit's update and rollout."""
    while not stop.is_set():
        try:
            _watch(kube, seen, stop)
        except ProtocolError:  # the API server cut the stream short: watch again
            log("the Deployment watch broke off; watching again")
        except Exception:
            if not stop.is_set():  # the cluster stopping ends the stream: not an error
                raise


def _watch(kube: Kube, seen: dict[str, Seen], stop: threading.Event) -> None:
    while not stop.is_set():
        stream = watch.Watch().stream(
            kube.apps().list_namespaced_deployment, NAMESPACE, timeout_seconds=30
        )
        for event in stream:
            now = time.monotonic()
            deployment = event["object"]
            record = seen.get(deployment.metadata.name)
            template = deployment.spec.template.metadata
            commit = (template.annotations or {}).get(COMMIT_ANNOTATION) if template else None
            if record is None or commit is None:
                continue
            with record.changed:
                record.updated.setdefault(commit, now)
                if _rolled_out(deployment):
                    record.rolled_out.setdefault(commit, now)
                record.changed.notify_all()
            if stop.is_set():
                return


def _rolled_out(deployment: Any) -> bool:
    status, spec, meta = deployment.status, deployment.spec, deployment.metadata
    wanted = spec.replicas if spec.replicas is not None else 1
    return bool(
        status is not None
        and (status.observed_generation or 0) >= (meta.generation or 0)
        and (status.updated_replicas or 0) == wanted
        and (status.ready_replicas or 0) == wanted
        and (status.replicas or 0) == wanted
    )


@dataclass
class Repo:
    work: Path
    bare: Path
    commits: list[str]  # commit k carries churn@v0.0.k


def write_repo(root: Path, name: str, versions: int, filler_tags: int = 0) -> Repo:
    """`versions` commits, each registered as a churn version; v0.0.0 in prod. `filler_tags`
    more tags over FILLER_ARTIFACTS other artifacts (each version registered on a commit of its
    own and assigned to dev there), so that the registry is large while churn stays small."""
    work = root / f"{name}-work"
    init_repo(work)
    index = "churn:\n  type: model\n  path: models/churn.bin\n"
    per_artifact = filler_tags // FILLER_ARTIFACTS // 2  # versions per filler artifact
    with FastImport(work) as stream:
        for number in range(versions):
            files = {"artifacts.yaml": index, "models/churn.bin": f"weights {number}\n"}
            stream.commit(CommitSpec(number + 1, Stamp(BASE_EPOCH + number * 10), "train", files))
            stream.tag(TagSpec(f"churn@v0.0.{number}", number + 1, Stamp(BASE_EPOCH + number)))
        stream.tag(TagSpec("churn#prod#0", 1, Stamp(BASE_EPOCH + versions * 10)))
        for number in range(per_artifact):
            mark = versions + 1 + number
            when = Stamp(BASE_EPOCH + versions * 10 + number)
            stream.commit(CommitSpec(mark, when, "filler", {"filler.txt": f"{number}\n"}))
            for artifact in range(FILLER_ARTIFACTS):
                stream.tag(TagSpec(f"filler-{artifact}@v0.0.{number}", mark, when))
                stream.tag(TagSpec(f"filler-{artifact}#dev#{number}", mark, when))
            if number and number % 20 == 0:
                log(f"{name}: {number * FILLER_ARTIFACTS * 2:,} filler tags streamed")
        marks = stream.close()
    bare = root / "srv" / f"{name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    if filler_tags:
        subprocess.run(["git", "-C", str(bare), "pack-refs", "--all"], check=True)
    return Repo(work, bare, [marks[n + 1] for n in range(versions)])


def push_assignment(repo: Repo, number: int) -> str:
    """Tag churn#prod#N on version N's commit and push it; returns the tag object's SHA."""
    name = f"churn#prod#{number}"
    env = {
        **os.environ,
        "GIT_COMMITTER_NAME": "Ana",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
        "GIT_COMMITTER_DATE": f"{BASE_EPOCH + 100_000 + number * 10} +0000",
    }
    target = repo.commits[number]
    subprocess.run(
        ["git", "-C", str(repo.work), "tag", "-a", name, "-m", "promote", target],
        env=env,
        check=True,
    )
    subprocess.run(
        ["git", "-C", str(repo.work), "push", "-q", str(repo.bare), f"refs/tags/{name}"],
        check=True,
    )
    return subprocess.run(
        ["git", "-C", str(repo.work), "rev-parse", f"refs/tags/{name}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@dataclass
class Sample:
    updated: float
    rolled_out: float


def wait_commit(record: Seen, commit: str, since: float, timeout: float) -> Sample:
    with record.changed:
        done = record.changed.wait_for(lambda: commit in record.rolled_out, timeout=timeout)
    if not done:
        raise SystemExit(f"error: commit {commit[:7]} not rolled out within {timeout:.0f}s")
    return Sample(record.updated[commit] - since, record.rolled_out[commit] - since)


def run_mode(
    mode: str, *, repo: Repo, url: str, operator: Operator, record: Seen, args: argparse.Namespace
) -> list[Sample]:
    rng = random.Random(7)
    samples: list[Sample] = []
    forge = fp.ForgeRepo(url.removesuffix(".git"), "git@127.0.0.1:ml/registry.git", url)
    for number in range(1, args.pushes + 1):
        if mode == "polling":
            time.sleep(rng.uniform(0, args.poll_interval))  # arrive at a random poll phase
        tag_object = push_assignment(repo, number)
        pushed = time.monotonic()
        if mode == "webhook":
            ref = f"refs/tags/churn#prod#{number}"
            delivery = fp.github_push(forge, ref, tag_object, SECRET.encode())
            status = post(operator.webhook_url + delivery.path, delivery.body, delivery.headers)
            assert status == 202, status
        timeout = 60.0 if mode == "webhook" else args.poll_interval * 3 + 60
        sample = wait_commit(record, repo.commits[number], pushed, timeout)
        samples.append(sample)
        log(
            f"{mode} push {number}/{args.pushes}: updated after {sample.updated * 1000:.0f} ms, "
            f"rolled out after {sample.rolled_out * 1000:.0f} ms"
        )
    return samples


def extra_nodes(args: argparse.Namespace) -> int:
    """KWOK nodes beyond the first, for the background registries' pods (110 fit on one)."""
    return math.ceil(args.background / PODS_PER_NODE) if args.background else 0


def start_background(kube: Kube, server: GitHttpServer, args: argparse.Namespace) -> None:
    """`args.background` ModelRegistries over the background repositories, all Ready first."""
    if not args.background:
        return
    bodies = []
    for number in range(args.background):
        repo = number % args.background_repos
        artifact = f"model-{(number // args.background_repos) % 20}"
        url = server.url(f"repo-{repo}.git")
        bindings = [(artifact, "prod")]
        bodies.append(model_registry(f"bg{number}", url, args.background_interval, bindings))
    create_and_wait(kube, bodies, 600, namespace=NAMESPACE)
    log(
        f"{args.background} background ModelRegistries Ready, polling every "
        f"{args.background_interval}"
    )


def summary(mode: str, label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{mode:<8} {label:<11} p50 {percentile(ms, 0.5):7.0f} ms   p95 {percentile(ms, 0.95):7.0f}"
        f" ms   mean {statistics.mean(ms):7.0f} ms   min {min(ms):6.0f}   max {max(ms):6.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20, help="pushes per mode (default 20)")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--modes", default="webhook,polling")
    parser.add_argument(
        "--registry-tags",
        type=int,
        default=0,
        help="filler tags in each pushed-to registry (issue 20: 120000)",
    )
    parser.add_argument(
        "--background",
        type=int,
        default=0,
        help="other ModelRegistries polling meanwhile (issue 20: 200)",
    )
    parser.add_argument("--background-repos", type=int, default=50)
    parser.add_argument("--background-interval", default="10s")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    results: dict[str, list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="gitstage-latency-") as scratch_name:
        scratch = Path(scratch_name)
        repos = {
            mode: write_repo(scratch, mode, args.pushes + 1, args.registry_tags) for mode in modes
        }
        if args.background:
            write_repositories(scratch / "srv", scratch, args.background_repos, 20)
        with (
            GitHttpServer(scratch / "srv", auth=BasicAuth(USER, PASSWORD)) as server,
            control_plane(scratch / "cluster", extra_nodes=extra_nodes(args)) as kube,
        ):
            namespace_with_secret(kube, NAMESPACE, USER, PASSWORD)
            seen = {f"{mode}-0": Seen() for mode in modes}
            stop = threading.Event()
            watcher = threading.Thread(
                target=watch_deployments, args=(kube, seen, stop), daemon=True
            )
            watcher.start()
            with operator_process(kube, scratch, SECRET) as operator:
                start_background(kube, server, args)
                for mode in modes:
                    url = server.url(f"{mode}.git")
                    interval = "1h" if mode == "webhook" else f"{args.poll_interval:g}s"
                    body = model_registry(mode, url, interval, [("churn", "prod")])
                    kube.custom().create_namespaced_custom_object(
                        GROUP, VERSION, NAMESPACE, PLURAL, body
                    )
                    first = repos[mode].commits[0]
                    wait_commit(seen[f"{mode}-0"], first, time.monotonic(), 120)
                    log(f"{mode}: serving v0.0.0; pushing {args.pushes} assignments")
                    results[mode] = run_mode(
                        mode,
                        repo=repos[mode],
                        url=url,
                        operator=operator,
                        record=seen[f"{mode}-0"],
                        args=args,
                    )
                current, peak = operator.rss_mib()
            stop.set()
    if args.registry_tags:
        print(
            f"each pushed-to registry holds {args.registry_tags:,} more tags over "
            f"{FILLER_ARTIFACTS} other artifacts"
        )
    if args.background:
        print(
            f"{args.background} other ModelRegistries over {args.background_repos} repositories "
            f"polled every {args.background_interval} meanwhile"
        )
    print(f"push-to-Deployment latency over {args.pushes} pushes per mode", end="")
    print(f" (polling interval {args.poll_interval:g} s, ±10% jitter; webhook: interval 1h)")
    for mode, samples in results.items():
        print(summary(mode, "updated", [s.updated for s in samples]))
        print(summary(mode, "rolled out", [s.rolled_out for s in samples]))
        if mode == "webhook":
            updated = [s.updated for s in samples]
            p50, p95 = percentile(updated, 0.5), percentile(updated, 0.95)
            met = p50 < 1.0 and p95 < 2.0
            print(
                f"target: webhook push to Deployment updated p50 {p50:.2f} s, p95 {p95:.2f} s "
                f"(p50 < 1 s and p95 < 2 s: {'met' if met else 'not met'})"
            )
    print(f"operator RSS at the end: {current:.0f} MiB (peak {peak:.0f} MiB)")


if __name__ == "__main__":
    main()

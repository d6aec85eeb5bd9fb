"""Promotion policy cost: what the operator pays per poll vs what `gitstage check` pays.

A registry written with ONE `git fast-import` stream: ARTIFACTS artifacts, each with VERSIONS
versions registered, assigned to staging and then to prod (3 tags per version), and a policy at
HEAD: prod requires staging and a signature by release@example.com. The newest SIGNED prod tags
of every artifact are re-created signed with a real SSH key (`git tag -s`, same tagger date).

Figures (median of --repeat runs where it makes sense):
  read        the registry state (pygit2, in-process), as every poll does anyway;
  evaluator   the policy and its lookup table of tags that may need a signature;
  decide cold every artifact's prod binding with an empty verification cache: one
              `ssh-keygen` verification per artifact (its holder), whatever the history length;
  decide warm the same after the cache is filled (the next polls): no verification;
  check       `gitstage check`'s judgement of every assignment in history: it verifies every
              signed prod tag.

    PYTHONPATH=operator:. python benchmarks/policy_bench.py [--artifacts 20] [--versions 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.support.fast_import import CommitSpec, FastImport, Stamp, TagSpec, init_repo

from gitstage.adapters.git import policy_reader
from gitstage.adapters.git.policy_reader import TagSignatures, policy_evaluator
from gitstage.adapters.git.reader import read_registry
from gitstage.adapters.git.repository import open_repository
from gitstage.domain.policy.rules import assignment_violations
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.plan import Refused, decide
from gitstage.workloads.render import Serving

T = TypeVar("T")
BASE_EPOCH = 1_600_000_000
POLICY = """\
rules:
  prod:
    requires: [staging]
    signed_by: [release@example.com]
"""
TEMPLATE = {"spec": {"containers": [{"name": "s", "image": "i"}]}}


def write_registry(repo: Path, key: Path, artifacts: int, versions: int, signed: int) -> int:
    """The registry; returns its number of tags."""
    init_repo(repo)
    names = [f"model-{a}" for a in range(artifacts)]
    clock = BASE_EPOCH
    tags: list[TagSpec] = []
    to_sign: list[tuple[str, int, int]] = []
    with FastImport(repo) as stream:
        mark = 0
        for v in range(versions):
            for name in names:
                mark += 1
                clock += 10
                stream.commit(CommitSpec(mark, Stamp(clock), files={f"{name}.txt": str(v)}))
                tags += [
                    TagSpec(f"{name}@v1.0.{v}", mark, Stamp(clock + 1)),
                    TagSpec(f"{name}#staging#{2 * v + 1}", mark, Stamp(clock + 2)),
                    TagSpec(f"{name}#prod#{2 * v + 2}", mark, Stamp(clock + 3)),
                ]
                if v >= versions - signed:
                    to_sign.append((f"{name}#prod#{2 * v + 2}", mark, clock + 3))
        mark += 1
        index = "".join(f"{n}:\n  type: model\n  path: {n}.txt\n" for n in names)
        files = {
            "artifacts.yaml": index,
            ".gitstage/policy.yaml": POLICY,
            ".gitstage/allowed_signers": "release@example.com "
            + key.with_suffix(".pub").read_text(),
        }
        stream.commit(CommitSpec(mark, Stamp(clock + 10), files=files))
        for tag in tags:
            stream.tag(tag)
        marks = stream.close()
    subprocess.run(["git", "-C", str(repo), "config", "gpg.format", "ssh"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.signingkey", str(key)], check=True)
    for name, target, when in to_sign:
        env = {**os.environ, "GIT_COMMITTER_DATE": f"{when} +0000"}
        env.update(GIT_COMMITTER_NAME="Release", GIT_COMMITTER_EMAIL="release@example.com")
        subprocess.run(
            ["git", "-C", str(repo), "tag", "-s", "-f", "-m", "promote", name, marks[target]],
            check=True,
            capture_output=True,
            env=env,
        )
    subprocess.run(["git", "-C", str(repo), "pack-refs", "--all"], check=True)
    return len(tags)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=20)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--signed", type=int, default=5, help="signed prod tags per artifact")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitstage-policy-bench-") as scratch:
        root = Path(scratch)
        key = root / "release"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        print(
            f"writing {args.artifacts} artifacts x {args.versions} versions, "
            f"{args.signed} signed prod tags each...",
            flush=True,
        )
        repo_path = root / "registry"
        (count, seconds) = timed(
            lambda: write_registry(repo_path, key, args.artifacts, args.versions, args.signed)
        )
        print(f"registry: {count} tags written in {seconds:.1f}s")
        run(repo_path, args.artifacts, args.repeat)


def run(repo_path: Path, artifacts: int, repeat: int) -> None:
    repo = open_repository(repo_path)
    reads = [timed(lambda: read_registry(repo_path)) for _ in range(repeat)]
    registry = reads[-1][0]
    state = registry.state
    builds = [timed(lambda: policy_evaluator(repo, state, None)) for _ in range(repeat)]
    bindings = [
        v1.DeploymentBinding.model_validate(
            {"name": name, "artifact": name, "stage": "prod", "template": TEMPLATE}
        )
        for name in sorted(state.artifacts)
    ]

    def decide_all() -> tuple[int, TagSignatures]:
        evaluator = policy_evaluator(repo, state, None)
        assert evaluator is not None
        served = sum(
            isinstance(decide(state, b, v1.Resolution(), evaluator), Serving) for b in bindings
        )
        lookup = evaluator.signatures
        assert isinstance(lookup, TagSignatures)
        return served, lookup

    policy_reader._VERIFIED.clear()
    (served, cold_lookup), cold = timed(decide_all)
    warm_runs = [timed(decide_all) for _ in range(repeat)]
    (_, warm_lookup) = warm_runs[-1][0]

    policy_reader._VERIFIED.clear()
    evaluator = policy_evaluator(repo, state, None)
    assert evaluator is not None
    violations, check_seconds = timed(
        lambda: assignment_violations(state, evaluator.policy, evaluator.signatures)
    )
    lookup = evaluator.signatures
    assert isinstance(lookup, TagSignatures)
    assignments = sum(
        len(s.assignments)
        for a in state.artifacts.values()
        for v in a.versions
        for s in v.stages.values()
    )
    refused = sum(
        isinstance(decide(state, b, v1.Resolution(), evaluator), Refused) for b in bindings
    )

    def ms(runs: list[tuple[object, float]]) -> float:
        return statistics.median(s for _, s in runs) * 1000

    print(f"read registry:      {ms(reads):8.1f} ms ({assignments} assignments)")
    print(f"build evaluator:    {ms(builds):8.1f} ms")
    print(
        f"decide cold:        {cold * 1000:8.1f} ms for {artifacts} prod bindings, "
        f"{cold_lookup.verified} tags checked, {cold_lookup.signed} signatures verified, "
        f"{served} served"
    )
    print(
        f"decide warm:        {ms(warm_runs):8.1f} ms for {artifacts} prod bindings, "
        f"{warm_lookup.verified} tags checked"
    )
    print(
        f"check (history):    {check_seconds * 1000:8.1f} ms, {lookup.verified} tags checked, "
        f"{lookup.signed} signatures verified, {len(violations)} violations "
        "(the older, unsigned prod tags)"
    )
    print(f"refused holders:    {refused} (every holder is signed: expected 0)")


if __name__ == "__main__":
    main()

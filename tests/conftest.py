"""Test options and the session-wide Kubernetes cluster fixture.

End-to-end tests run against, in order of preference:
  --kubeconfig PATH   an existing cluster (nothing is started or stopped);
  --kind              a kind cluster through pytest-kind (needs kind, a Docker daemon and
                      pytest-kind; skipped with the reason otherwise);
  default             the local control plane built from Go modules (gitstage.dev.cluster).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gitstage")
    group.addoption("--kubeconfig", default=None, help="Run e2e tests against this cluster.")
    group.addoption("--kind", action="store_true", help="Run e2e tests on a kind cluster.")
    group.addoption("--skip-e2e", action="store_true", help="Skip end-to-end and image tests.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that start their own real node go first: one real node runs per machine, and the
    # session's cluster (started by the first test that asks for it) keeps its node to the end.
    items.sort(key=lambda item: 0 if "node_lifecycle" in item.keywords else 1)
    if config.getoption("--skip-e2e"):
        skip = pytest.mark.skip(reason="--skip-e2e given")
        for item in items:
            # The image tests too: a cold image build takes minutes.
            if "e2e" in item.keywords or "image" in item.keywords:
                item.add_marker(skip)


@dataclass(frozen=True)
class Kube:
    """The cluster under test: an admin kubeconfig, and how it was provided."""

    kubeconfig: Path
    mode: str


@pytest.fixture(scope="session")
def kube(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kube]:
    existing = request.config.getoption("--kubeconfig")
    if existing:
        yield from _with_kubeconfig(Path(existing), "existing")
    elif request.config.getoption("--kind"):
        yield from _kind(tmp_path_factory.mktemp("kind") / "kubeconfig")
    else:
        from gitstage.dev.cluster import LocalCluster

        # KWOK nodes: these tests prove the operator's API behaviour; real pods have their own
        # module-scoped cluster (tests/e2e/test_real_pods.py), one real node per machine.
        with LocalCluster(tmp_path_factory.mktemp("cluster"), nodes="kwok") as cluster:
            yield from _with_kubeconfig(Path(cluster.info.kubeconfig), "local")


def _with_kubeconfig(path: Path, mode: str) -> Iterator[Kube]:
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    try:
        yield Kube(path, mode)
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous


def _kind(kubeconfig: Path) -> Iterator[Kube]:
    from tests.support import kind

    reason = kind.unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    with kind.kind_cluster(kubeconfig) as path:
        yield from _with_kubeconfig(path, "kind")

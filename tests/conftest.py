"""Test options and the session-wide Kubernetes cluster fixture.

End-to-end tests run against, in order of preference:
  --kubeconfig PATH   an existing cluster (nothing is started or stopped);
  --kind              a kind cluster through pytest-kind (needs kind, a Docker daemon and
                      pytest-kind; skipped with the reason otherwise);
  default             the local control plane built from Go modules (gitstage.dev.cluster),
                      with a real node running the image built from the Dockerfile.
Servers that pods reach listen on `kube.node_address`; pods run `kube.image`. Set
GITSTAGE_TEST_IMAGE to an image an existing cluster can pull.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
    """The cluster under test: an admin kubeconfig, and how it was provided.

    `node_address` is where servers for pods listen (the real node's bridge address; loopback
    when the cluster is not ours), `image` the gitstage image the pods run (built from the
    Dockerfile and imported into the node; with --kubeconfig or --kind, GITSTAGE_TEST_IMAGE or
    the chart's default, which the cluster must be able to pull)."""

    kubeconfig: Path
    mode: str
    node_address: str = "127.0.0.1"
    image: str = os.environ.get("GITSTAGE_TEST_IMAGE", "gitstage:test")


@pytest.fixture(scope="session")
def kube(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kube]:
    yield from cluster_for(request, tmp_path_factory, real_node_cluster)


def cluster_for(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    local: Callable[[Path], Iterator[Kube]],
) -> Iterator[Kube]:
    """The cluster the options ask for (--kubeconfig, --kind), else `local(state_dir)`."""
    existing = request.config.getoption("--kubeconfig")
    if existing:
        yield from _with_kubeconfig(Path(existing), "existing")
    elif request.config.getoption("--kind"):
        yield from kind_cluster(tmp_path_factory.mktemp("kind") / "kubeconfig")
    else:
        yield from local(tmp_path_factory.mktemp("cluster"))


def kwok_cluster(state_dir: Path) -> Iterator[Kube]:
    """The local control plane with KWOK's fake node (pods are reported, never started)."""
    from gitstage.dev.cluster import LocalCluster

    with LocalCluster(state_dir, nodes="kwok") as cluster:
        yield from with_kube(Kube(Path(cluster.info.kubeconfig), "local"))


def real_node_cluster(state_dir: Path) -> Iterator[Kube]:
    """The local control plane with a real node running the image built from the Dockerfile."""
    from gitstage.dev.cluster import ImageArchive, LocalCluster
    from gitstage.dev.images import gitstage_image

    built = gitstage_image()
    images = [ImageArchive(built.reference, built.archive)]
    with LocalCluster(state_dir, images=images) as cluster:
        kube = Kube(
            Path(cluster.info.kubeconfig), "local", cluster.info.node_address, built.reference
        )
        yield from with_kube(kube)


def _with_kubeconfig(path: Path, mode: str) -> Iterator[Kube]:
    yield from with_kube(Kube(path, mode))


def with_kube(kube: Kube) -> Iterator[Kube]:
    """KUBECONFIG, and the image of the operators the tests start in-process (their fetcher
    init containers), for the session; both restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kube.kubeconfig))
        patch.setenv("GITSTAGE_FETCHER_IMAGE", kube.image)
        yield kube


def kind_cluster(kubeconfig: Path) -> Iterator[Kube]:
    from tests.support import kind

    reason = kind.unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    with kind.kind_cluster(kubeconfig) as path:
        yield from _with_kubeconfig(path, "kind")

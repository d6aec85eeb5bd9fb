"""The `--kind` mode of the e2e suite: a kind cluster through pytest-kind, when it can run here.

pytest-kind is used as a library (its plugin is disabled in pyproject: it would register its
own `--kubeconfig`, and it downloads a kind binary of its own when not given one).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLUSTER_NAME = "gitstage-e2e"


def unusable_reason() -> str | None:
    """Why a kind cluster cannot be created on this machine, or None when it can."""
    if shutil.which("kind") is None:
        return "--kind needs the `kind` command on PATH"
    docker = shutil.which("docker")
    if docker is None:
        return "--kind needs the `docker` command on PATH"
    try:
        answer = subprocess.run(
            [docker, "info"], capture_output=True, timeout=30, check=False, text=True
        )
    except subprocess.TimeoutExpired:
        return "--kind needs a Docker daemon: `docker info` did not answer within 30 s"
    if answer.returncode != 0:
        return "--kind needs a Docker daemon: `docker info` failed"
    try:
        import pytest_kind  # noqa: F401
    except ImportError:
        return "--kind needs pytest-kind (pip install pytest-kind)"
    return None


@contextmanager
def kind_cluster(kubeconfig: Path) -> Iterator[Path]:
    """Create (or reuse) the kind cluster with its kubeconfig at `kubeconfig`; delete it after."""
    from pytest_kind import KindCluster

    kind = shutil.which("kind")
    assert kind is not None, unusable_reason()
    cluster = KindCluster(CLUSTER_NAME, kubeconfig, kind_path=Path(kind))
    cluster.create()
    try:
        yield kubeconfig
    finally:
        cluster.delete()

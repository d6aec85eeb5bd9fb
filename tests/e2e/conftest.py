"""Shared by the end-to-end modules: the CRD installed once, and the mirror cache of an
in-process operator (GITSTAGE_CACHE_DIR set for the module, restored after it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Kube
from tests.e2e.kubeutil import install_crd


@pytest.fixture(scope="module")
def crd(kube: Kube) -> Kube:
    """The cluster, with the ModelRegistry CRD from `crds/` (tests share one cluster)."""
    install_crd()
    return kube


@pytest.fixture(scope="module")
def mirror_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("mirrors")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITSTAGE_CACHE_DIR", str(path))
        yield path

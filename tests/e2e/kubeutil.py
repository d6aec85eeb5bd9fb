"""Helpers for end-to-end tests: API clients, polling with a deadline, the CRD, namespaces;
`run_git` (tests/support/git.py) runs git as a data scientist."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.support.git import run_git

__all__ = [
    "api",
    "eventually",
    "install_crd",
    "namespace_with_git_secret",
    "run_git",
    "serving_template",
]

T = TypeVar("T")
KOPF_ARGS = ["run", "-A", "--standalone", "-m", "gitstage.operator.handlers"]
ROOT = Path(__file__).resolve().parents[2]


def api() -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=os.environ["KUBECONFIG"], client_configuration=configuration
    )
    return client.ApiClient(configuration)


def eventually(probe: Callable[[], T | None], *, timeout: float = 60, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)  # polling interval between probes
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


def install_crd() -> None:
    """Create the ModelRegistry CRD from `crds/` (already there: fine, tests share a cluster)."""
    crd = yaml.safe_load((ROOT / "crds" / "modelregistries.gitstage.dev.yaml").read_text())
    try:
        client.ApiextensionsV1Api(api()).create_custom_resource_definition(crd)
    except ApiException as error:
        if error.status != 409:
            raise


def namespace_with_git_secret(prefix: str, username: str, password: str) -> str:
    """A fresh namespace `prefix-xxxxxx` holding the basic-auth Secret `git-auth`."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="git-auth"),
            string_data={"username": username, "password": password},
        ),
    )
    return namespace


def serving_template() -> dict[str, Any]:
    """A pod template whose container serves the fetched model (Python's HTTP server in the
    session's gitstage image: the `kube` fixture exports it as GITSTAGE_FETCHER_IMAGE)."""
    from gitstage.dev.demo import model_server

    return {"spec": {"containers": [model_server(os.environ["GITSTAGE_FETCHER_IMAGE"])]}}

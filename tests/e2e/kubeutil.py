"""Helpers for end-to-end tests: API clients, polling with a deadline, git as a data scientist."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
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


def run_git(path: Path, *args: str, date: int | None = None) -> str:
    """git in `path` as the data scientist `ds`; `date` (epoch seconds) is the committer and
    tagger time."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "ds",
        "GIT_AUTHOR_EMAIL": "ds@example.com",
        "GIT_COMMITTER_NAME": "ds",
        "GIT_COMMITTER_EMAIL": "ds@example.com",
    }
    if date is not None:
        env["GIT_COMMITTER_DATE"] = f"{date} +0000"
    result = subprocess.run(
        ["git", "-C", str(path), *args], env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def serving_template() -> dict[str, Any]:
    """A pod template whose container serves the fetched model (Python's HTTP server in the
    session's gitstage image: the `kube` fixture exports it as GITSTAGE_FETCHER_IMAGE)."""
    from gitstage.dev.demo import model_server

    return {"spec": {"containers": [model_server(os.environ["GITSTAGE_FETCHER_IMAGE"])]}}

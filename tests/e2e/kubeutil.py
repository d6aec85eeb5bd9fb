"""Helpers for end-to-end tests: API clients and polling with a deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes import client, config

T = TypeVar("T")


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

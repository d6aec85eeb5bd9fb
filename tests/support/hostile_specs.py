"""ModelRegistry specs that both the CRD (the API server) and the pydantic model must refuse,
and one they must both accept: fed to each side by tests/unit/test_spec_parity.py and
tests/e2e/test_operator.py."""

from __future__ import annotations

import copy
from typing import Any

VALID: dict[str, Any] = {
    "source": {"url": "https://git.example/registry.git", "interval": "30s"},
    "deployments": [
        {
            "name": "churn-prod",
            "artifact": "churn",
            "stage": "prod",
            "replicas": 2,
            "modelPath": "/mnt/models",
            "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
        }
    ],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """VALID with the field at `path` (dots; a number indexes a list) set to `value`."""
    spec = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = spec
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    return spec


def _twice() -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    spec["deployments"].append(copy.deepcopy(spec["deployments"][0]))
    return spec


HOSTILE: dict[str, dict[str, Any]] = {
    "interval of 1 ms": _with("source.interval", "1ms"),
    "interval of 0 s": _with("source.interval", "0s"),
    "interval of a week": _with("source.interval", "168h"),
    "password in the URL": _with("source.url", "https://u:pw@git.example/r.git"),
    "secret name with a namespace": _with("source.secretRef", {"name": "other-ns/creds"}),
    "fetcher secret name upper case": _with("deployments.0.fetcher", {"secretRef": {"name": "A"}}),
    "empty fetcher image": _with("deployments.0.fetcher", {"image": ""}),
    "modelPath on the fetcher's /tmp": _with("deployments.0.modelPath", "/tmp"),
    "modelPath below /tmp": _with("deployments.0.modelPath", "/tmp/models"),
    "modelPath with ..": _with("deployments.0.modelPath", "/mnt/../etc"),
    "modelPath relative": _with("deployments.0.modelPath", "models"),
    "replicas as a string": _with("deployments.0.replicas", "3"),
    "negative replicas": _with("deployments.0.replicas", -1),
    "a container named like the fetcher": _with(
        "deployments.0.template.spec.containers.0.name", "gitstage-fetch"
    ),
    "an init container named like the fetcher": _with(
        "deployments.0.template.spec.initContainers",
        [{"name": "gitstage-fetch", "image": "x:1"}],
    ),
    "a volume named like gitstage's": _with(
        "deployments.0.template.spec.volumes", [{"name": "gitstage-model", "emptyDir": {}}]
    ),
    "two deployments with one name": _twice(),
    "both stage and version": _with("deployments.0.version", "v1.0.0"),
}

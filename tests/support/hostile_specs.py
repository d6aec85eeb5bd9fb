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
    "a volume named like the fetcher's CA bundle": _with(
        "deployments.0.template.spec.volumes", [{"name": "gitstage-ca", "emptyDir": {}}]
    ),
    "two deployments with one name": _twice(),
    "both stage and version": _with("deployments.0.version", "v1.0.0"),
}
HOSTILE["service account with a namespace"] = _with("serviceAccountName", "kube-system/admin")


def _pod(path: str, value: Any) -> dict[str, Any]:
    return _with(f"deployments.0.template.spec.{path}", value)


# Specs both sides admit but the operator's pod policy refuses (Pod Security's own ground): each
# with the setting (OperatorSettings.pod_policy field) that lifts the refusal, if any.
POD_POLICY_BREAKERS: dict[str, tuple[dict[str, Any], str | None]] = {
    "a privileged container": (
        _pod("containers.0.securityContext", {"privileged": True}),
        "allow_privileged",
    ),
    "a privileged init container": (
        _pod(
            "initContainers",
            [{"name": "prep", "image": "x:1", "securityContext": {"privileged": True}}],
        ),
        "allow_privileged",
    ),
    "CAP_SYS_ADMIN added": (
        _pod("containers.0.securityContext", {"capabilities": {"add": ["SYS_ADMIN"]}}),
        "allow_privileged",
    ),
    "hostNetwork": (_pod("hostNetwork", True), "allow_host_namespaces"),
    "hostPID": (_pod("hostPID", True), "allow_host_namespaces"),
    "hostIPC": (_pod("hostIPC", True), "allow_host_namespaces"),
    "a hostPort": (
        _pod("containers.0.ports", [{"containerPort": 80, "hostPort": 80}]),
        "allow_host_namespaces",
    ),
    "a hostPath volume": (
        _pod("volumes", [{"name": "root", "hostPath": {"path": "/"}}]),
        "allow_host_path",
    ),
    "a fetcher image off the allow-list": (
        _with("deployments.0.fetcher", {"image": "attacker.example/steal:1"}),
        "fetcher_images",
    ),
    "another ServiceAccount, not impersonating": (
        _pod("serviceAccountName", "operator-admin"),
        None,
    ),
}

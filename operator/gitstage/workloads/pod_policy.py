"""What a tenant's pod template may ask for: the operator applies it, so it must not be a way
around Pod Security. Pure; the operator's settings say what is allowed."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gitstage.resources import v1alpha1 as v1

# Pod Security "baseline" allows adding only these capabilities; anything more is privileged.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True)
class PodPolicy:
    """What the operator's configuration allows beyond Pod Security's baseline."""

    allow_privileged: bool = False
    allow_host_namespaces: bool = False
    allow_host_path: bool = False
    # fnmatch patterns of fetcher images a ModelRegistry may choose (the operator's own always).
    fetcher_images: tuple[str, ...] = ()


def violations(
    binding: v1.DeploymentBinding,
    policy: PodPolicy,
    default_fetcher_image: str,
    *,
    impersonating: bool,
) -> list[str]:
    """Every rule the binding's pod breaks, one short sentence each (empty: it may run)."""
    spec = binding.template.spec
    found: list[str] = []
    if not policy.allow_privileged:
        found += _privileged(spec)
    if not policy.allow_host_namespaces:
        found += _host_namespaces(spec)
    if not policy.allow_host_path:
        found += [f"volume {name} is a hostPath" for name in _host_paths(spec)]
    image = binding.fetcher.image
    if image is not None and not fetcher_image_allowed(image, policy, default_fetcher_image):
        found.append(f"fetcher image {image} is not in the operator's allowed fetcher images")
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account and not impersonating:
        found.append(
            f"the pod's serviceAccountName {account} needs spec.serviceAccountName"
            " (the operator applies it as that account)"
        )
    return found


def fetcher_image_allowed(image: str, policy: PodPolicy, default_fetcher_image: str) -> bool:
    if image == default_fetcher_image:
        return True
    return any(fnmatch.fnmatchcase(image, pattern) for pattern in policy.fetcher_images)


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in CONTAINER_LISTS:
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def _privileged(spec: dict[str, Any]) -> list[str]:
    found = []
    for container in _containers(spec):
        name = container.get("name", "?")
        context = container.get("securityContext") or {}
        if context.get("privileged") is True:
            found.append(f"container {name} is privileged")
        added = {str(c).upper().removeprefix("CAP_") for c in _added_capabilities(context)}
        extra = sorted(added - BASELINE_CAPABILITIES)
        if extra:
            found.append(f"container {name} adds capabilities {', '.join(extra)}")
    return found


def _added_capabilities(context: dict[str, Any]) -> list[Any]:
    capabilities = context.get("capabilities") or {}
    added = capabilities.get("add") if isinstance(capabilities, dict) else None
    return added if isinstance(added, list) else []


def _host_namespaces(spec: dict[str, Any]) -> list[str]:
    found = [f"the pod sets {key}" for key in HOST_NAMESPACES if spec.get(key) is True]
    for container in _containers(spec):
        ports = [p for p in container.get("ports") or [] if isinstance(p, dict)]
        if any(p.get("hostPort") for p in ports):
            found.append(f"container {container.get('name', '?')} uses a hostPort")
    return found


def _host_paths(spec: dict[str, Any]) -> list[str]:
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    return [str(v.get("name", "?")) for v in volumes if "hostPath" in v]

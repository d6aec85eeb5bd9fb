"""The fetcher init container behind a corporate network: a CA bundle and proxy variables.

The operator hands its fetchers the transport settings it uses itself: the proxy variables as
they are, and the CA bundle as a ConfigMap of the served Deployment's own namespace (a pod can
mount no other namespace's; trust-manager, for one, copies a bundle into every namespace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CA_VOLUME = "gitstage-ca"
CA_DIR = "/etc/gitstage/ca"
CA_FILE = "ca.crt"
ENV_CA_BUNDLE = "GITSTAGE_CA_BUNDLE"  # read by gitstage fetch (adapters/transport.py)

Manifest = dict[str, Any]


@dataclass(frozen=True)
class FetcherTransport:
    """`ca_config_map`: the ConfigMap holding the PEM bundle at `ca_key`; None: the image's
    system CAs. `proxy_env`: HTTPS_PROXY, NO_PROXY, ... as (name, value) pairs."""

    ca_config_map: str | None = None
    ca_key: str = CA_FILE
    proxy_env: tuple[tuple[str, str], ...] = ()


def add_transport(pod_spec: Manifest, fetcher_name: str, transport: FetcherTransport) -> None:
    """Give the fetcher init container the transport settings; nothing changes without any, so
    Deployments rendered before this setting existed keep their digest."""
    fetcher = next(c for c in pod_spec["initContainers"] if c["name"] == fetcher_name)
    env = [{"name": name, "value": value} for name, value in transport.proxy_env]
    if transport.ca_config_map is not None:
        env.append({"name": ENV_CA_BUNDLE, "value": f"{CA_DIR}/{CA_FILE}"})
        fetcher["volumeMounts"].append({"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True})
        pod_spec["volumes"].append(
            {
                "name": CA_VOLUME,
                "configMap": {
                    "name": transport.ca_config_map,
                    "items": [{"key": transport.ca_key, "path": CA_FILE}],
                },
            }
        )
    fetcher["env"] += env

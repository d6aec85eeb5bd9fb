"""Operator settings from the environment (GITSTAGE_*), read once at startup.

`gitstage operator` turns its flags into these variables, so `kopf run -m
gitstage.operator.handlers` and in-process test runners configure the operator the same way:

  GITSTAGE_CACHE_DIR             bare repository caches
  GITSTAGE_FETCHER_IMAGE         the init container's image
  GITSTAGE_WEBHOOK_PORT          webhook receiver port (unset: no receiver)
  GITSTAGE_WEBHOOK_ADDRESS       its bind address (default 0.0.0.0)
  GITSTAGE_WEBHOOK_SECRET        webhook secret(s), one per line (rotation: any one matches)
  GITSTAGE_WEBHOOK_SECRET_FILE   a file of secrets, one per line (a mounted Secret key)
  GITSTAGE_METRICS_PORT          Prometheus endpoint port (unset: none)
  GITSTAGE_METRICS_ADDRESS       its bind address (default 0.0.0.0)
  GITSTAGE_DEFAULT_SERVICE_ACCOUNT   impersonated when spec.serviceAccountName is unset
  GITSTAGE_REQUIRE_SERVICE_ACCOUNT   "1": refuse a ModelRegistry without one (no default either)
  GITSTAGE_ALLOW_PRIVILEGED          "1": pod templates may be privileged or add capabilities
  GITSTAGE_ALLOW_HOST_NAMESPACES     "1": pod templates may use host network/PID/IPC and hostPorts
  GITSTAGE_ALLOW_HOST_PATH           "1": pod templates may mount hostPath volumes
  GITSTAGE_ALLOWED_FETCHER_IMAGES    fetcher images a ModelRegistry may choose (fnmatch patterns,
                                     comma or newline separated; the operator's own always)
  GITSTAGE_CA_BUNDLE                 PEM file of the CAs the operator's git trusts for HTTPS
                                     (instead of the system's; adapters/transport.py)
  GITSTAGE_FETCHER_CA_CONFIGMAP      a ConfigMap, in each served namespace, whose bundle the
                                     fetcher init containers trust (unset: the image's CAs)
  GITSTAGE_FETCHER_CA_KEY            its key (default ca.crt)
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY  used by the operator's git, and handed on to the fetchers
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitstage import __version__
from gitstage.adapters.transport import CaBundleError, proxy_environment, tls_context
from gitstage.resources.v1alpha1 import DNS_SUBDOMAIN_PATTERN
from gitstage.workloads.fetcher_transport import CA_FILE, FetcherTransport
from gitstage.workloads.pod_policy import PodPolicy

DEFAULT_IMAGE = f"ghcr.io/gitstage/gitstage:{__version__}"
# "0": kopf does not watch CRDs or list namespaces (no cluster-scoped access needed).
SCANNING_ENV = "GITSTAGE_SCANNING"
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - in a pod the listeners must be reachable by the Service


class SettingsError(ValueError):
    """A setting we cannot use; the message is one line and holds no secret."""


@dataclass(frozen=True)
class Listener:
    host: str
    port: int


@dataclass(frozen=True)
class Tenancy:
    """Whom the operator acts as for a ModelRegistry (Flux's model: impersonate a ServiceAccount
    of the registry's namespace)."""

    default_service_account: str | None = None
    require_service_account: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tenancy:
        default = env.get("GITSTAGE_DEFAULT_SERVICE_ACCOUNT", "").strip() or None
        if default is not None and not re.match(DNS_SUBDOMAIN_PATTERN, default):
            raise SettingsError(
                f"GITSTAGE_DEFAULT_SERVICE_ACCOUNT {default[:63]!r} is not a ServiceAccount name"
            )
        return cls(default, _flag(env, "GITSTAGE_REQUIRE_SERVICE_ACCOUNT"))

    def account_for(self, spec_account: str | None) -> str | None:
        """The ServiceAccount to impersonate; None: the operator's own identity."""
        return spec_account or self.default_service_account


@dataclass(frozen=True)
class OperatorSettings:
    fetcher_image: str
    cache_dir: Path
    scanning: bool = True
    webhook: Listener | None = None
    webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    metrics: Listener | None = None
    tenancy: Tenancy = field(default_factory=Tenancy)
    pod_policy: PodPolicy = field(default_factory=PodPolicy)
    fetcher_transport: FetcherTransport = field(default_factory=FetcherTransport)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if env is None else env
        cache = env.get("GITSTAGE_CACHE_DIR") or str(
            Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitstage" / "mirrors"
        )
        webhook = _listener(env, "WEBHOOK")
        secrets = webhook_secrets(env)
        if webhook is not None and not secrets:
            raise SettingsError(
                "the webhook receiver needs a secret: set GITSTAGE_WEBHOOK_SECRET "
                "or GITSTAGE_WEBHOOK_SECRET_FILE (--webhook-secret-file)"
            )
        return cls(
            fetcher_image=env.get("GITSTAGE_FETCHER_IMAGE", DEFAULT_IMAGE),
            cache_dir=Path(cache),
            scanning=env.get(SCANNING_ENV, "1") != "0",
            webhook=webhook,
            webhook_secrets=secrets,
            metrics=_listener(env, "METRICS"),
            tenancy=Tenancy.from_env(env),
            pod_policy=pod_policy(env),
            fetcher_transport=fetcher_transport(env),
        )


def pod_policy(env: Mapping[str, str]) -> PodPolicy:
    patterns = re.split(r"[,\n]", env.get("GITSTAGE_ALLOWED_FETCHER_IMAGES", ""))
    return PodPolicy(
        allow_privileged=_flag(env, "GITSTAGE_ALLOW_PRIVILEGED"),
        allow_host_namespaces=_flag(env, "GITSTAGE_ALLOW_HOST_NAMESPACES"),
        allow_host_path=_flag(env, "GITSTAGE_ALLOW_HOST_PATH"),
        fetcher_images=tuple(p.strip() for p in patterns if p.strip()),
    )


def fetcher_transport(env: Mapping[str, str]) -> FetcherTransport:
    """The operator's proxy variables and CA ConfigMap for its fetchers; the operator's own CA
    bundle is checked here, so a bad one stops the start with one line."""
    try:
        tls_context(env)
    except CaBundleError as error:
        raise SettingsError(str(error)) from None
    config_map = env.get("GITSTAGE_FETCHER_CA_CONFIGMAP", "").strip() or None
    if config_map is not None and not re.match(DNS_SUBDOMAIN_PATTERN, config_map):
        raise SettingsError(
            f"GITSTAGE_FETCHER_CA_CONFIGMAP {config_map[:63]!r} is not a ConfigMap name"
        )
    key = env.get("GITSTAGE_FETCHER_CA_KEY", "").strip() or CA_FILE
    if not re.fullmatch(r"[-._a-zA-Z0-9]{1,253}", key) or key in (".", ".."):
        raise SettingsError(f"GITSTAGE_FETCHER_CA_KEY {key[:63]!r} is not a ConfigMap key")
    proxies = tuple(proxy_environment(env).items())
    return FetcherTransport(config_map, key, proxies)


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name} must be 1 or 0, got {text[:20]!r}")


def webhook_secrets(env: Mapping[str, str]) -> tuple[bytes, ...]:
    """Every non-empty line of GITSTAGE_WEBHOOK_SECRET and of GITSTAGE_WEBHOOK_SECRET_FILE."""
    lines = env.get("GITSTAGE_WEBHOOK_SECRET", "").splitlines()
    path = env.get("GITSTAGE_WEBHOOK_SECRET_FILE")
    if path:
        try:
            lines += Path(path).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SettingsError(f"cannot read the webhook secret file {path}: {reason}") from None
    return tuple(dict.fromkeys(line.strip().encode() for line in lines if line.strip()))


def _listener(env: Mapping[str, str], kind: str) -> Listener | None:
    text = env.get(f"GITSTAGE_{kind}_PORT", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 65535:
        raise SettingsError(f"GITSTAGE_{kind}_PORT must be a port number, got {text[:20]!r}")
    return Listener(env.get(f"GITSTAGE_{kind}_ADDRESS") or ANY_ADDRESS, int(text))

"""Operator settings from the environment (GITSTAGE_*), read once at startup.

`gitstage operator` turns its flags into these variables, so `kopf run -m
gitstage.operator.handlers` and in-process test runners configure the operator the same way:

  GITSTAGE_CACHE_DIR             bare repository caches
  GITSTAGE_FETCHER_IMAGE         the init container's image
  GITSTAGE_WEBHOOK_PORT          webhook receiver port (unset: no receiver)
  GITSTAGE_WEBHOOK_ADDRESS       its bind address (default 0.0.0.0)
  GITSTAGE_WEBHOOK_SECRET        webhook secret(s), one per line (rotation: any one matches)
  GITSTAGE_WEBHOOK_SECRET_FILE   a file of secrets, one per line (a mounted Secret key)
  GITSTAGE_WEBHOOK_HEADER_TIMEOUT    seconds for a request line and headers (default 10)
  GITSTAGE_WEBHOOK_BODY_TIMEOUT      seconds for a body, once the headers are in (default 10)
  GITSTAGE_WEBHOOK_IDLE_TIMEOUT      seconds a kept-alive connection may wait (default 30)
  GITSTAGE_WEBHOOK_MAX_CONNECTIONS   open webhook connections at most (default 256)
  GITSTAGE_WEBHOOK_MAX_HEADER_BYTES  request line and headers together, at most (default 16384)
  GITSTAGE_METRICS_PORT          Prometheus endpoint port (unset: none)
  GITSTAGE_METRICS_ADDRESS       its bind address (default 0.0.0.0)
  GITSTAGE_DEFAULT_SERVICE_ACCOUNT   impersonated when spec.serviceAccountName is unset
  GITSTAGE_REQUIRE_SERVICE_ACCOUNT   "1": refuse a ModelRegistry without one (no default either)
  GITSTAGE_ALLOW_PRIVILEGED          "1": pod templates may be privileged or add capabilities
  GITSTAGE_ALLOW_HOST_NAMESPACES     "1": pod templates may use host network/PID/IPC and hostPorts
  GITSTAGE_ALLOW_HOST_PATH           "1": pod templates may mount hostPath volumes
  GITSTAGE_LEADER_ELECTION           "1": elect a leader on a Lease (several replicas)
  GITSTAGE_LEADER_ELECTION_NAMESPACE the Lease's namespace (default: POD_NAMESPACE)
  GITSTAGE_LEADER_ELECTION_ID        the Lease's name (default gitstage-operator)
  GITSTAGE_ALLOWED_FETCHER_IMAGES    fetcher images a ModelRegistry may choose (fnmatch patterns,
                                     comma or newline separated; the operator's own always)
  GITSTAGE_CA_BUNDLE                 PEM file of the CAs the operator's git trusts for HTTPS
                                     (instead of the system's; adapters/transport.py)
  GITSTAGE_FETCHER_CA_CONFIGMAP      a ConfigMap, in each served namespace, whose bundle the
                                     fetcher init containers trust (unset: the image's CAs)
  GITSTAGE_FETCHER_CA_KEY            its key (default ca.crt)
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY  used by the operator's git, and handed on to the fetchers
  GITSTAGE_DASHBOARD_PORT        the read-only dashboard's port (unset: no dashboard)
  GITSTAGE_DASHBOARD_ADDRESS     its bind address (default 127.0.0.1: localhost only)
  GITSTAGE_DASHBOARD_TOKEN       a bearer token the dashboard requires (or ..._TOKEN_FILE)
  GITSTAGE_DASHBOARD_USER_HEADER a trusted proxy's header naming the signed-in user, required
  GITSTAGE_DASHBOARD_NAMESPACES  comma-separated: show only these namespaces' ModelRegistries
"""

from __future__ import annotations

import os
import re
import resource
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitstage import __version__
from gitstage.adapters.transport import CaBundleError, proxy_environment, tls_context
from gitstage.dashboard.access import Access, AccessError, token_from_file
from gitstage.operator.leader import ElectionSettings
from gitstage.resources.v1alpha1 import DNS_SUBDOMAIN_PATTERN
from gitstage.workloads.fetcher_transport import CA_FILE, FetcherTransport
from gitstage.workloads.pod_policy import PodPolicy

DEFAULT_IMAGE = f"ghcr.io/gitstage/gitstage:{__version__}"
# "0": kopf does not watch CRDs or list namespaces (no cluster-scoped access needed).
SCANNING_ENV = "GITSTAGE_SCANNING"
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - in a pod the listeners must be reachable by the Service
LOCALHOST = "127.0.0.1"


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
class WebhookLimits:
    """What one webhook connection may take; see operator/connection_guard.py."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0  # GitHub gives up on a delivery after 10 s anyway
    idle_timeout: float = 30.0
    max_connections: int = 256
    max_header_bytes: int = 16384

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookLimits:
        default = cls()
        limits = cls(
            header_timeout=_seconds(env, "HEADER_TIMEOUT", default.header_timeout),
            body_timeout=_seconds(env, "BODY_TIMEOUT", default.body_timeout),
            idle_timeout=_seconds(env, "IDLE_TIMEOUT", default.idle_timeout),
            max_connections=_count(env, "MAX_CONNECTIONS", default.max_connections, 1, 65535),
            max_header_bytes=_count(
                env, "MAX_HEADER_BYTES", default.max_header_bytes, 1024, 1 << 20
            ),
        )
        _check_descriptors(limits.max_connections)
        return limits


@dataclass(frozen=True)
class OperatorSettings:
    fetcher_image: str
    cache_dir: Path
    scanning: bool = True
    webhook: Listener | None = None
    webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    webhook_limits: WebhookLimits = WebhookLimits()
    metrics: Listener | None = None
    tenancy: Tenancy = field(default_factory=Tenancy)
    pod_policy: PodPolicy = field(default_factory=PodPolicy)
    election: ElectionSettings | None = None
    fetcher_transport: FetcherTransport = field(default_factory=FetcherTransport)
    dashboard: Listener | None = None
    dashboard_access: Access = field(default_factory=Access)
    dashboard_namespaces: frozenset[str] = frozenset()

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
            webhook_limits=WebhookLimits.from_env(env),
            metrics=_listener(env, "METRICS"),
            tenancy=Tenancy.from_env(env),
            pod_policy=pod_policy(env),
            election=election(env),
            fetcher_transport=fetcher_transport(env),
            dashboard=_listener(env, "DASHBOARD", LOCALHOST),
            dashboard_access=dashboard_access(env),
            dashboard_namespaces=frozenset(
                n.strip()
                for n in env.get("GITSTAGE_DASHBOARD_NAMESPACES", "").split(",")
                if n.strip()
            ),
        )


def election(env: Mapping[str, str]) -> ElectionSettings | None:
    """The Lease to elect a leader on, or None for a single replica."""
    if not _flag(env, "GITSTAGE_LEADER_ELECTION"):
        return None
    namespace = env.get("GITSTAGE_LEADER_ELECTION_NAMESPACE") or env.get("POD_NAMESPACE")
    if not namespace:
        raise SettingsError(
            "leader election needs the Lease's namespace: set POD_NAMESPACE (the chart does)"
            " or GITSTAGE_LEADER_ELECTION_NAMESPACE"
        )
    identity = env.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    name = env.get("GITSTAGE_LEADER_ELECTION_ID") or "gitstage-operator"
    return ElectionSettings(namespace, name, identity)


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


def dashboard_access(env: Mapping[str, str]) -> Access:
    """GITSTAGE_DASHBOARD_TOKEN (or the first line of ..._TOKEN_FILE) and ..._USER_HEADER."""
    token = env.get("GITSTAGE_DASHBOARD_TOKEN", "").strip()
    path = env.get("GITSTAGE_DASHBOARD_TOKEN_FILE")
    if path and not token:
        try:
            token = token_from_file(path)
        except AccessError as error:
            raise SettingsError(str(error)) from None
    header = env.get("GITSTAGE_DASHBOARD_USER_HEADER", "").strip()
    return Access(token or None, header or None)


def _listener(env: Mapping[str, str], kind: str, address: str = ANY_ADDRESS) -> Listener | None:
    text = env.get(f"GITSTAGE_{kind}_PORT", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 65535:
        raise SettingsError(f"GITSTAGE_{kind}_PORT must be a port number, got {text[:20]!r}")
    return Listener(env.get(f"GITSTAGE_{kind}_ADDRESS") or address, int(text))


_MAX_TIMEOUT = 3600.0
# Descriptors the operator needs besides webhook connections: API watches, git subprocesses'
# pipes, mirrors' files, the metrics listener. An unbounded receiver exhausted them (issue 16).
DESCRIPTOR_RESERVE = 128
# Connections the webhook listener accepts at a time (the listen backlog): past the limit they
# hold a descriptor until refused or admitted in the same loop iteration.
LISTEN_BACKLOG = 64


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(f"GITSTAGE_WEBHOOK_{name}", "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= _MAX_TIMEOUT:
        raise SettingsError(
            f"GITSTAGE_WEBHOOK_{name} must be seconds above 0 and at most {_MAX_TIMEOUT:g}, "
            f"got {text[:20]!r}"
        )
    return value


def _count(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(f"GITSTAGE_WEBHOOK_{name}", "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise SettingsError(
            f"GITSTAGE_WEBHOOK_{name} must be a whole number from {low} to {high}, "
            f"got {text[:20]!r}"
        )
    return int(text)


def _check_descriptors(max_connections: int) -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    kept = DESCRIPTOR_RESERVE + LISTEN_BACKLOG
    if soft != resource.RLIM_INFINITY and max_connections + kept > soft:
        raise SettingsError(
            f"GITSTAGE_WEBHOOK_MAX_CONNECTIONS={max_connections} leaves the operator too few "
            f"file descriptors (the open-file limit is {soft}, {kept} are kept for its own work "
            f"and connections being accepted): at most {max(soft - kept, 0)}"
        )

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
  GITSTAGE_DASHBOARD_PORT        the read-only dashboard's port (unset: no dashboard)
  GITSTAGE_DASHBOARD_ADDRESS     its bind address (default 127.0.0.1: localhost only)
  GITSTAGE_DASHBOARD_TOKEN       a bearer token the dashboard requires (or ..._TOKEN_FILE)
  GITSTAGE_DASHBOARD_USER_HEADER a trusted proxy's header naming the signed-in user, required
  GITSTAGE_DASHBOARD_NAMESPACES  comma-separated: show only these namespaces' ModelRegistries
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitstage import __version__
from gitstage.dashboard.access import Access, AccessError, token_from_file

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
class OperatorSettings:
    fetcher_image: str
    cache_dir: Path
    scanning: bool = True
    webhook: Listener | None = None
    webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    metrics: Listener | None = None
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
            metrics=_listener(env, "METRICS"),
            dashboard=_listener(env, "DASHBOARD", LOCALHOST),
            dashboard_access=dashboard_access(env),
            dashboard_namespaces=frozenset(
                n.strip()
                for n in env.get("GITSTAGE_DASHBOARD_NAMESPACES", "").split(",")
                if n.strip()
            ),
        )


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

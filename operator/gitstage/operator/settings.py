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
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitstage import __version__

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


def _listener(env: Mapping[str, str], kind: str) -> Listener | None:
    text = env.get(f"GITSTAGE_{kind}_PORT", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 65535:
        raise SettingsError(f"GITSTAGE_{kind}_PORT must be a port number, got {text[:20]!r}")
    return Listener(env.get(f"GITSTAGE_{kind}_ADDRESS") or ANY_ADDRESS, int(text))


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

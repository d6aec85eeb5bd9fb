"""ModelRegistry objects: status patches and the Secrets they reference."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube.client import core, custom
from gitstage.adapters.metrics import api_write
from gitstage.resources import v1alpha1 as v1


class SecretNotFoundError(LookupError):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"secret {namespace}/{name} not found")


def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    api_write("patch", "modelregistries/status")
    custom().patch_namespaced_custom_object_status(
        group=v1.GROUP,
        version=v1.VERSION,
        namespace=namespace,
        plural=v1.PLURAL,
        name=name,
        body={"status": status},
    )


def read_registry(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        body = custom().get_namespaced_custom_object(
            group=v1.GROUP, version=v1.VERSION, namespace=namespace, plural=v1.PLURAL, name=name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return cast(dict[str, Any], body)


class SecretForbiddenError(PermissionError):
    def __init__(self, namespace: str, name: str, user: str) -> None:
        super().__init__(f"{user} may not get secret {namespace}/{name}")


def list_registries(namespace: str | None) -> list[dict[str, Any]]:
    """Every ModelRegistry of `namespace`, or of every namespace when None."""
    api = custom()
    if namespace is None:
        found = api.list_cluster_custom_object(group=v1.GROUP, version=v1.VERSION, plural=v1.PLURAL)
    else:
        found = api.list_namespaced_custom_object(
            group=v1.GROUP, version=v1.VERSION, namespace=namespace, plural=v1.PLURAL
        )
    return cast(list[dict[str, Any]], cast(dict[str, Any], found).get("items") or [])


def patch_registry(namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of the object (spec or metadata), as `kubectl patch --type merge`."""
    api_write("patch", "modelregistries")
    patched = custom().patch_namespaced_custom_object(
        group=v1.GROUP,
        version=v1.VERSION,
        namespace=namespace,
        plural=v1.PLURAL,
        name=name,
        body=body,
    )
    return cast(dict[str, Any], patched)


SECRET_TTL = 10.0  # seconds a Secret read is reused (a rotation is seen within this)
_secrets: dict[tuple[str, str, str | None], tuple[float, dict[str, str]]] = {}
_secrets_lock = threading.Lock()


def read_secret(namespace: str, name: str, as_user: str | None = None) -> dict[str, str]:
    """Decoded string values; the caller must never log them. With `as_user`, read as that
    user: a ModelRegistry can only use the Secrets its ServiceAccount may read.

    A successful read is reused for SECRET_TTL seconds by the same reader (a thousand
    registries sharing one Secret read it once, not once each, when they all reconcile)."""
    key = (namespace, name, as_user)
    now = time.monotonic()
    with _secrets_lock:
        held = _secrets.get(key)
    if held is not None and now - held[0] < SECRET_TTL:
        return dict(held[1])
    data = _read_secret(namespace, name, as_user)
    with _secrets_lock:
        _secrets[key] = (now, data)
        for stale in [k for k, (at, _) in _secrets.items() if now - at >= SECRET_TTL]:
            del _secrets[stale]
    return dict(data)


def _read_secret(namespace: str, name: str, as_user: str | None) -> dict[str, str]:
    try:
        secret = core(as_user).read_namespaced_secret(name=name, namespace=namespace)
    except ApiException as error:
        if error.status == 404:
            raise SecretNotFoundError(namespace, name) from None
        if error.status == 403 and as_user is not None:
            raise SecretForbiddenError(namespace, name, as_user) from None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

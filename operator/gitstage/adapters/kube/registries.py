"""ModelRegistry objects: status patches and the Secrets they reference."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube import rest, views
from gitstage.adapters.metrics import api_write
from gitstage.resources import v1alpha1 as v1


class SecretNotFoundError(LookupError):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"secret {namespace}/{name} not found")


API = f"{v1.GROUP}/{v1.VERSION}"


def _registry_path(namespace: str, *rest_of_path: str) -> str:
    return rest.group_path(API, namespace, v1.PLURAL, *rest_of_path)


def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    api_write("patch", "modelregistries/status")
    where = _registry_path(namespace, name, "status")
    rest.call("PATCH", where, body={"status": status}, content_type=rest.MERGE_PATCH)


def read_registry(namespace: str, name: str) -> dict[str, Any] | None:
    where = _registry_path(namespace, name)
    answer = rest.get(where)
    return None if answer is None else rest.json_object(answer, f"GET {where}")


class SecretForbiddenError(PermissionError):
    def __init__(self, namespace: str, name: str, user: str) -> None:
        super().__init__(f"{user} may not get secret {namespace}/{name}")


def list_registries(namespace: str | None) -> list[dict[str, Any]]:
    """Every ModelRegistry of `namespace`, or of every namespace when None."""
    if namespace is None:
        where = rest.path("apis", v1.GROUP, v1.VERSION, v1.PLURAL)
    else:
        where = _registry_path(namespace)
    items = rest.call_json("GET", where).get("items") or []
    return [item for item in items if isinstance(item, dict)]


def patch_registry(namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of the object (spec or metadata), as `kubectl patch --type merge`."""
    api_write("patch", "modelregistries")
    where = _registry_path(namespace, name)
    return rest.call_json("PATCH", where, body=body, content_type=rest.MERGE_PATCH)


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
        answer = rest.call("GET", rest.core_path(namespace, "secrets", name), as_user=as_user)
    except ApiException as error:
        if error.status == 404:
            raise SecretNotFoundError(namespace, name) from None
        if error.status == 403 and as_user is not None:
            raise SecretForbiddenError(namespace, name, as_user) from None
        raise
    secret = views.Secret.model_validate_json(answer)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}

"""Calls to the API server by path, through the `kubernetes` client's ApiClient (its
credentials, TLS settings, connection pool and impersonation header), without the generated
API classes.

Those classes import every model of their API group when first used: CoreV1Api alone loaded
about 250 pydantic models, 21 MiB of the operator's resident memory, for the handful of calls
it makes. Answers come back as bytes for typed views (views.py) or json.loads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import quote

import urllib3
from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube.client import client_as

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # a JSON body is valid YAML

Query = Sequence[tuple[str, str]]

# (connect, read) seconds: an API server that went silent (a half-open connection, a partition
# dropping packets) would otherwise hold a reconcile thread, one of the 32, forever.
TIMEOUT = (10.0, 60.0)


def path(*segments: str) -> str:
    """An API path from its segments, each quoted whole (a name never adds a segment)."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def namespaced(api: str, namespace: str, plural: str, *rest: str) -> str:
    """The path of a namespaced collection or object; `api` is "v1" or "group/version"."""
    return path(*api.split("/"), "namespaces", namespace, plural, *rest)


def call(
    method: str,
    resource_path: str,
    *,
    query: Query = (),
    body: object = None,
    content_type: str = JSON,
    as_user: str | None = None,
    timeout: tuple[float, float] | None = None,
) -> bytes:
    """The answer's body; any status outside 2xx raises the client's ApiException (404 as
    NotFoundException...), as the generated API classes do. An API server that cannot be
    reached (refused, reset, silent for TIMEOUT) is an ApiException of status 0, as the
    client makes a TLS failure: urllib3's errors would escape every caller's handling."""
    api = client_as(as_user)
    headers = {"Accept": JSON}
    if body is not None:
        headers["Content-Type"] = content_type
    request = api.param_serialize(
        method=method,
        resource_path=resource_path,
        query_params=list(query),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    try:
        response = api.call_api(*request, _request_timeout=timeout or TIMEOUT)
        data = response.read()  # type: ignore[no-untyped-call]
    except urllib3.exceptions.HTTPError as error:
        raise ApiException(status=0, reason=unreachable(error)) from None
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(
            http_resp=response, body=data.decode("utf-8", "replace"), data=None
        )
    return cast(bytes, data)


def unreachable(error: urllib3.exceptions.HTTPError) -> str:
    """One line: why the connection failed (a MaxRetryError's cause, not its retry count)."""
    cause = getattr(error, "reason", None) or error
    text = " ".join(str(cause).split())
    return f"cannot reach the API server: {text[:240]}"


def get(resource_path: str, **options: Any) -> bytes | None:
    """A GET's answer; None when the object does not exist (404)."""
    try:
        return call("GET", resource_path, **options)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def call_json(method: str, resource_path: str, **options: Any) -> dict[str, Any]:
    """`call`, its answer decoded as a JSON object."""
    return json_object(call(method, resource_path, **options), f"{method} {resource_path}")


def json_object(answer: bytes, what: str) -> dict[str, Any]:
    decoded = json.loads(answer)
    if not isinstance(decoded, dict):
        raise ValueError(f"{what}: expected a JSON object")
    return decoded


def core_path(namespace: str, plural: str, *rest: str) -> str:
    """/api/v1/namespaces/... (pods, secrets, services)."""
    return "/api" + namespaced("v1", namespace, plural, *rest)


def group_path(api: str, namespace: str, plural: str, *rest: str) -> str:
    """/apis/<group>/<version>/namespaces/... (deployments, leases, custom resources)."""
    return "/apis" + namespaced(api, namespace, plural, *rest)

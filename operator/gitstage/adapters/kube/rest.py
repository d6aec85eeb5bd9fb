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

from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube.client import client_as

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # a JSON body is valid YAML

Query = Sequence[tuple[str, str]]


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
) -> bytes:
    """The answer's body; any status outside 2xx raises the client's ApiException (404 as
    NotFoundException...), as the generated API classes do."""
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
    response = api.call_api(*request)
    data = response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(
            http_resp=response, body=data.decode("utf-8", "replace"), data=None
        )
    return cast(bytes, data)


def call_json(method: str, resource_path: str, **options: Any) -> dict[str, Any]:
    """`call`, its answer decoded as a JSON object."""
    answer = json.loads(call(method, resource_path, **options))
    if not isinstance(answer, dict):
        raise ValueError(f"{method} {resource_path}: expected a JSON object")
    return answer


def core_path(namespace: str, plural: str, *rest: str) -> str:
    """/api/v1/namespaces/... (pods, secrets, services)."""
    return "/api" + namespaced("v1", namespace, plural, *rest)


def group_path(api: str, namespace: str, plural: str, *rest: str) -> str:
    """/apis/<group>/<version>/namespaces/... (deployments, leases, custom resources)."""
    return "/apis" + namespaced(api, namespace, plural, *rest)

"""API clients built from a kubeconfig (KUBECONFIG or ~/.kube/config) or the in-cluster account."""

from __future__ import annotations

import os
from functools import cache

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


@cache
def api_client() -> client.ApiClient:
    """One shared, thread-safe client (connections are pooled by urllib3)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
    except ConfigException:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    return client.ApiClient(configuration)


def apps() -> client.AppsV1Api:
    return client.AppsV1Api(api_client())


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())

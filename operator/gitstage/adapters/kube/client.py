"""API clients built from a kubeconfig (KUBECONFIG or ~/.kube/config) or the in-cluster account."""

from __future__ import annotations

import os
from functools import cache, lru_cache
from pathlib import Path

import yaml
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
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
        except yaml.YAMLError as error:  # the client lets the parser's error through
            where = os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ConfigException(f"{where} is not valid YAML: {_yaml_problem(error)}") from None
    # As many pooled connections as the operator has threads calling the API (handlers.py):
    # urllib3's default of 10 dropped and reopened connections, warning each time.
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


POOL_SIZE = 32


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The parser's problem and where it is, in one line."""
    problem = getattr(error, "problem", None) or type(error).__name__
    mark = getattr(error, "problem_mark", None)
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def current_namespace() -> str:
    """The namespace kubectl would use: the kubeconfig context's, in a pod its own, else default."""
    try:
        _contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG")
        )
    except (ConfigException, OSError, yaml.YAMLError):
        active = None  # api_client() names the problem when a call needs the kubeconfig
    if active and active.get("context", {}).get("namespace"):
        return str(active["context"]["namespace"])
    if IN_CLUSTER_NAMESPACE.exists():
        return IN_CLUSTER_NAMESPACE.read_text().strip()
    return "default"


def service_account_user(namespace: str, name: str) -> str:
    """The user name the API server gives a ServiceAccount (what RoleBindings match)."""
    return f"system:serviceaccount:{namespace}:{name}"


@lru_cache(maxsize=256)
def impersonating_client(user: str) -> client.ApiClient:
    """A client that acts as `user` (Impersonate-User): the API server authorizes every request
    as that user, so a tenant's ModelRegistry gets exactly its ServiceAccount's rights."""
    impersonating = client.ApiClient(api_client().configuration)
    impersonating.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
    return impersonating


def client_as(user: str | None) -> client.ApiClient:
    """The shared client, or one impersonating `user`. Calls go through rest.py: the generated
    API classes (AppsV1Api, CoreV1Api...) import every model of their group."""
    return api_client() if user is None else impersonating_client(user)

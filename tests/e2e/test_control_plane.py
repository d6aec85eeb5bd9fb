"""Proof that the test control plane is real Kubernetes: controllers, a real node running the
pods, schema checks, RBAC."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitstage.dev.demo import MODEL_SERVER
from tests.conftest import Kube
from tests.e2e.kubeutil import api, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    eventually(lambda: _default_sa(core, name), what="default service account")
    yield name
    core.delete_namespace(name)


def _default_sa(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException:
        return False
    return True


def server_container() -> client.V1Container:
    """Python's HTTP server from the session's image (real pods run what they are given)."""
    image = os.environ["GITSTAGE_FETCHER_IMAGE"]
    return client.V1Container(name="c", image=image, command=["python", "-c", MODEL_SERVER])


def test_a_deployment_becomes_available_through_the_controllers(namespace: str) -> None:
    apps = client.AppsV1Api(api())
    labels = {"app": "proof"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="proof"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[server_container()]),
            ),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)

    def available() -> int:
        status = apps.read_namespaced_deployment("proof", namespace).status
        return (status.available_replicas or 0) if status else 0

    assert eventually(lambda: available() == 2, timeout=90, what="2 available replicas")
    pods = client.CoreV1Api(api()).list_namespaced_pod(namespace, label_selector="app=proof")
    assert [p.status.phase for p in pods.items if p.status] == ["Running", "Running"]


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.proof.gitstage.dev"},
    "spec": {
        "group": "proof.gitstage.dev",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_the_api_server_enforces_a_crd_schema(namespace: str) -> None:
    extensions = client.ApiextensionsV1Api(api())
    try:
        extensions.create_custom_resource_definition(CRD)
    except ApiException as error:
        if error.status != 409:
            raise
    custom = client.CustomObjectsApi(api())

    def widget(size: int) -> dict[str, object]:
        return {
            "apiVersion": "proof.gitstage.dev/v1",
            "kind": "Widget",
            "metadata": {"name": f"w{size}"},
            "spec": {"size": size},
        }

    def create(size: int) -> object:
        return custom.create_namespaced_custom_object(
            "proof.gitstage.dev", "v1", namespace, "widgets", widget(size)
        )

    eventually(lambda: _created(create, 3), what="the CRD to be served")
    with pytest.raises(ApiException) as rejected:
        create(0)
    assert rejected.value.status == 422
    assert "spec.size" in str(rejected.value.body)


def _created(create: object, size: int) -> bool:
    try:
        create(size)  # type: ignore[operator]
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_rbac_forbids_an_unbound_service_account(namespace: str) -> None:
    core = client.CoreV1Api(api())
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token
    admin = api().configuration
    configuration = client.Configuration(host=admin.host)
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.api_key = {"BearerToken": f"Bearer {token}"}
    apps = client.AppsV1Api(client.ApiClient(configuration))
    with pytest.raises(ApiException) as denied:
        apps.list_namespaced_deployment(namespace)
    assert denied.value.status == 403

    rbac = client.RbacAuthorizationV1Api(api())
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-deployments"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "nobody-reads"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-deployments",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )
    assert eventually(lambda: _can_list(apps, namespace), what="RBAC grant to take effect")


def _can_list(apps: client.AppsV1Api, namespace: str) -> bool:
    try:
        apps.list_namespaced_deployment(namespace)
    except ApiException as error:
        if error.status == 403:
            return False
        raise
    return True

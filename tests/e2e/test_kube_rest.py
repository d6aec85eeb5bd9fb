"""The Kubernetes adapter's calls by path (adapters/kube/rest.py) against the real API server:
Leases with optimistic concurrency, Services, Secrets, ModelRegistries, errors, and that the
operator never loads the generated API classes (each imports every model of its group)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitstage.adapters.kube import client as kube_client
from gitstage.adapters.kube import leases, rest, services
from gitstage.adapters.kube.deployments import api_message
from gitstage.adapters.kube.registries import SecretNotFoundError, read_secret
from gitstage.workloads.render import ANNOTATION_DIGEST
from tests.conftest import Kube
from tests.e2e.kubeutil import api
from tests.support.chart import render

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 12, 4, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"rest-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _claim(holder: str, at: datetime, *, acquired: bool) -> leases.Claim:
    return leases.Claim(holder, 15, at, acquired=acquired)


def test_a_lease_is_created_renewed_and_taken_over(namespace: str) -> None:
    assert leases.read(namespace, "gitstage") is None
    leases.write(namespace, "gitstage", None, _claim("a", NOW, acquired=True))
    created = leases.read(namespace, "gitstage")
    assert created is not None
    assert created.spec is not None
    assert created.spec.holder_identity == "a"
    assert created.spec.renew_time == NOW  # microseconds survive the round trip
    assert created.spec.lease_duration_seconds == 15

    later = NOW + timedelta(seconds=5)
    leases.write(namespace, "gitstage", created, _claim("a", later, acquired=False))
    renewed = leases.read(namespace, "gitstage")
    assert renewed is not None
    assert renewed.spec is not None
    assert (renewed.spec.acquire_time, renewed.spec.renew_time) == (NOW, later)
    assert renewed.spec.lease_transitions == 0

    leases.write(namespace, "gitstage", renewed, _claim("b", later, acquired=True))
    taken = leases.read(namespace, "gitstage")
    assert taken is not None
    assert taken.spec is not None
    assert (taken.spec.holder_identity, taken.spec.lease_transitions) == ("b", 1)
    assert taken.spec.acquire_time == later


def test_the_lease_lifecycle_needs_only_the_charts_role(
    namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user bound to the chart's leader-election Role alone (create; get and update of
    the one Lease): a write with a verb the chart does not grant (patch) would be refused."""
    rendered = render(tmp_path, {"leaderElection": {"enabled": True}}, namespace=namespace)
    role = next(
        o for o in rendered.objects if o["kind"] == "Role" and "leader" in o["metadata"]["name"]
    )
    rbac = client.RbacAuthorizationV1Api(api())
    rbac.create_namespaced_role(namespace, {**role, "metadata": {"name": "elector"}})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "elector"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "elector"},
            "subjects": [
                {"kind": "User", "name": "elector", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    name = role["rules"][1]["resourceNames"][0]
    monkeypatch.setattr(
        rest, "client_as", lambda _user: kube_client.impersonating_client("elector")
    )
    leases.write(namespace, name, None, _claim("a", NOW, acquired=True))
    created = leases.read(namespace, name)
    assert created is not None
    leases.write(namespace, name, created, _claim("a", NOW + timedelta(seconds=5), acquired=False))
    renewed = leases.read(namespace, name)
    assert renewed is not None
    assert renewed.spec is not None
    assert renewed.spec.renew_time == NOW + timedelta(seconds=5)


def test_a_stale_lease_write_is_a_conflict_and_keeps_the_labels(namespace: str) -> None:
    leases.write(namespace, "gitstage", None, _claim("a", NOW, acquired=True))
    seen = leases.read(namespace, "gitstage")
    assert seen is not None
    client.CoordinationV1Api(api()).patch_namespaced_lease(
        "gitstage", namespace, {"metadata": {"labels": {"team": "ml"}}}
    )
    with pytest.raises(leases.LeaseConflictError, match="changed under us"):
        leases.write(namespace, "gitstage", seen, _claim("b", NOW, acquired=True))
    with pytest.raises(leases.LeaseConflictError):  # created by someone else first
        leases.write(namespace, "gitstage", None, _claim("b", NOW, acquired=True))

    fresh = leases.read(namespace, "gitstage")
    assert fresh is not None
    leases.write(namespace, "gitstage", fresh, _claim("b", NOW, acquired=True))
    stored = client.CoordinationV1Api(api()).read_namespaced_lease("gitstage", namespace)
    assert stored.metadata.labels == {"team": "ml"}
    assert stored.spec.holder_identity == "b"


def _service(namespace: str, digest: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "churn",
            "namespace": namespace,
            "annotations": {ANNOTATION_DIGEST: digest},
        },
        "spec": {"selector": {"app": "churn"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def test_a_service_is_applied_observed_and_deleted(namespace: str) -> None:
    assert services.observe(namespace, "churn") is None
    services.apply(_service(namespace, "one"))
    services.apply(_service(namespace, "two"))  # a forced re-apply under the same manager
    observed = services.observe(namespace, "churn")
    assert observed is not None
    assert observed.digest == "two"
    assert observed.owner_uids == ()
    stored = client.CoreV1Api(api()).read_namespaced_service("churn", namespace)
    managers = {entry.manager for entry in stored.metadata.managed_fields}
    assert managers == {"gitstage"}
    services.delete(namespace, "churn")
    services.delete(namespace, "churn")  # already gone: nothing to do
    assert services.observe(namespace, "churn") is None


def test_secrets_are_decoded_and_a_missing_one_is_named(namespace: str) -> None:
    client.CoreV1Api(api()).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="git"),
            string_data={"username": "ci", "password": "p@ss wörd"},
        ),
    )
    assert read_secret(namespace, "git") == {"username": "ci", "password": "p@ss wörd"}
    with pytest.raises(SecretNotFoundError, match=f"secret {namespace}/absent not found"):
        read_secret(namespace, "absent")


def test_an_error_answer_is_the_clients_exception_with_the_servers_message(
    namespace: str,
) -> None:
    with pytest.raises(ApiException) as raised:
        rest.call("GET", rest.core_path(namespace, "services", "absent"))
    assert raised.value.status == 404
    assert api_message(raised.value) == 'services "absent" not found'
    invalid = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid"}}
    with pytest.raises(ApiException) as refused:
        rest.call("POST", rest.core_path(namespace, "configmaps"), body=invalid)
    assert refused.value.status == 422
    assert "Not_Valid" in api_message(refused.value)


def test_path_segments_are_quoted_whole() -> None:
    where = rest.group_path("apps/v1", "ns", "deployments", "a/b?c")
    assert where == "/apis/apps/v1/namespaces/ns/deployments/a%2Fb%3Fc"
    assert rest.core_path("ns", "pods") == "/api/v1/namespaces/ns/pods"


PROBE = """
import json
import sys
from datetime import UTC, datetime
import gitstage.operator.handlers
from gitstage.adapters.kube import deployments, leases, registries, services
ns = sys.argv[1]
leases.write(ns, "probe", None, leases.Claim("me", 15, datetime.now(UTC), acquired=True))
leases.read(ns, "probe")
services.observe(ns, "absent")
deployments.observe(ns, "absent")
registries.list_registries(ns)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("kubernetes.client.api.")
                        or m.startswith("kubernetes.client.models."))))
"""


def test_the_operator_loads_no_generated_api_class(crd: Kube, namespace: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, namespace],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    # kopf imports two models (and what they import) to recognise the client's objects.
    kopfs = {f"kubernetes.client.models.{m}" for m in ("v1_object_meta", "v1_owner_reference")}
    assert set(loaded) <= {*kopfs, "kubernetes.client.models.v1_managed_fields_entry"}, loaded

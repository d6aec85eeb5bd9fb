"""Rendering Deployments: byte-stable, pinned to commits, fields left to others when unset."""

from __future__ import annotations

import json
import os

import pytest

from gitstage.cli.fetch import fetch_command
from gitstage.domain.fetch.limits import DEFAULT_STALL_SECONDS, DEFAULT_TIMEOUT_SECONDS
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.labels import label_value
from gitstage.workloads.render import (
    ANNOTATION_COMMIT,
    ANNOTATION_DIGEST,
    FETCHER_NAME,
    MODEL_VOLUME,
    Owner,
    Serving,
    SourceAccess,
    render_deployment,
)

OWNER = Owner("registry", "ml", "1234-uid")
SOURCE = SourceAccess("https://git.example/registry.git", "git-auth")
COMMIT = "a" * 40


def binding(**overrides: object) -> v1.DeploymentBinding:
    raw: dict[str, object] = {
        "name": "churn-prod",
        "artifact": "path/to:Churn",
        "stage": "prod",
        "template": {
            "metadata": {"labels": {"team": "ml"}},
            "spec": {"containers": [{"name": "server", "image": "srv:1"}]},
        },
    }
    raw.update(overrides)
    return v1.DeploymentBinding.model_validate(raw)


def serving(version: str = "v1.2.0", commit: str = COMMIT, tag: str = "m#prod#3") -> Serving:
    return Serving("path/to:Churn", version, commit, "prod", tag, "2026-01-01T00:00:00+00:00")


def test_rendering_is_byte_stable() -> None:
    first = json.dumps(render_deployment(OWNER, binding(), serving(), SOURCE, "img:1"))
    second = json.dumps(render_deployment(OWNER, binding(), serving(), SOURCE, "img:1"))
    assert first == second


def test_the_rendered_fetcher_runs_with_a_deadline_and_a_stall_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is rendered for them (a new setting in every manifest would restart every
    served pod on upgrade): `gitstage fetch` as the init container runs it has them anyway."""
    manifest = render_deployment(OWNER, binding(), serving(), SOURCE, "img:1")
    fetcher = manifest["spec"]["template"]["spec"]["initContainers"][0]
    for name in list(os.environ):
        if name.startswith("GITSTAGE_FETCH_"):
            monkeypatch.delenv(name)
    for variable in fetcher["env"]:
        if "value" in variable:
            monkeypatch.setenv(variable["name"], variable["value"])
    context = fetch_command.make_context("fetch", list(fetcher["args"][1:]))
    assert context.params["timeout"] == DEFAULT_TIMEOUT_SECONDS == 3600
    assert context.params["stall_timeout"] == DEFAULT_STALL_SECONDS == 60


def test_pods_are_pinned_to_the_commit_and_mount_the_model_read_only() -> None:
    manifest = render_deployment(OWNER, binding(), serving(), SOURCE, "img:1")
    pod = manifest["spec"]["template"]
    assert pod["metadata"]["annotations"][ANNOTATION_COMMIT] == COMMIT
    fetcher = pod["spec"]["initContainers"][0]
    assert fetcher["name"] == FETCHER_NAME
    env = {e["name"]: e.get("value") for e in fetcher["env"]}
    assert env["GITSTAGE_FETCH_REV"] == COMMIT
    assert env["GITSTAGE_FETCH_ARTIFACT"] == "path/to:Churn"
    assert env["GITSTAGE_FETCH_DEST"] == "/mnt/models"
    secret_refs = [
        e["valueFrom"]["secretKeyRef"]["name"] for e in fetcher["env"] if "valueFrom" in e
    ]
    assert set(secret_refs) == {"git-auth"}
    server = pod["spec"]["containers"][0]
    assert {"name": MODEL_VOLUME, "mountPath": "/mnt/models", "readOnly": True} in server[
        "volumeMounts"
    ]
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "1234-uid"


def test_replicas_are_left_to_others_unless_set() -> None:
    assert "replicas" not in render_deployment(OWNER, binding(), serving(), SOURCE, "img")["spec"]
    pinned = render_deployment(OWNER, binding(replicas=3), serving(), SOURCE, "img")
    assert pinned["spec"]["replicas"] == 3
    zero = render_deployment(
        OWNER, binding(replicas=3), serving(), SOURCE, "img", scale_to_zero=True
    )
    assert zero["spec"]["replicas"] == 0


def test_a_new_assignment_tag_of_the_same_version_does_not_touch_pods() -> None:
    before = render_deployment(OWNER, binding(), serving(tag="m#prod#3"), SOURCE, "img")
    after = render_deployment(OWNER, binding(), serving(tag="m#prod#9"), SOURCE, "img")
    assert before["spec"]["template"] == after["spec"]["template"]
    assert (
        before["metadata"]["annotations"][ANNOTATION_DIGEST]
        != after["metadata"]["annotations"][ANNOTATION_DIGEST]
    )


def test_a_new_version_changes_the_pod_template() -> None:
    before = render_deployment(OWNER, binding(), serving(), SOURCE, "img")
    after = render_deployment(OWNER, binding(), serving("v1.3.0", "b" * 40), SOURCE, "img")
    assert before["spec"]["template"] != after["spec"]["template"]


def test_label_values_are_valid_and_distinct() -> None:
    values = [
        label_value(v) for v in ("path/to:Churn", "path/to=Churn", "a" * 80, "v1.0.0+build.5")
    ]
    for value in values:
        assert len(value) <= 63
        assert value[0].isalnum()
        assert value[-1].isalnum()
        assert all(c.isalnum() or c in "-_." for c in value)
    assert len(set(values)) == len(values)
    assert label_value("churn") == "churn"


def test_deployment_settings_are_rendered_only_when_set() -> None:
    plain = render_deployment(OWNER, binding(), serving(), SOURCE, "gitstage:1")
    assert set(plain["spec"]) == {"selector", "template"}
    volumes = {v["name"]: v for v in plain["spec"]["template"]["spec"]["volumes"]}
    assert volumes[MODEL_VOLUME] == {"name": MODEL_VOLUME, "emptyDir": {}}
    tuned = binding(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}},
        progressDeadlineSeconds=3600,
        revisionHistoryLimit=2,
        modelVolume={"sizeLimit": "20Gi", "medium": "Memory"},
    )
    spec = render_deployment(OWNER, tuned, serving(), SOURCE, "gitstage:1")["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}
    assert (spec["progressDeadlineSeconds"], spec["revisionHistoryLimit"]) == (3600, 2)
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes[MODEL_VOLUME]["emptyDir"] == {"sizeLimit": "20Gi", "medium": "Memory"}


def test_a_model_cache_is_one_directory_per_commit_on_the_claim() -> None:
    cached = binding(modelCache={"claimName": "models"})
    pod = render_deployment(OWNER, cached, serving(), SOURCE, "gitstage:1")["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[MODEL_VOLUME] == {
        "name": MODEL_VOLUME,
        "persistentVolumeClaim": {"claimName": "models"},
    }
    fetcher = pod["spec"]["initContainers"][0]
    env = {e["name"]: e.get("value") for e in fetcher["env"]}
    key = f"gitstage/{COMMIT}/{label_value('path/to:Churn')}"
    assert env["GITSTAGE_FETCH_DEST"] == f"/mnt/models/{key}"
    (mount,) = [
        m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == MODEL_VOLUME
    ]
    assert mount == {
        "name": MODEL_VOLUME,
        "mountPath": "/mnt/models",
        "readOnly": True,
        "subPath": key,
    }


def test_a_service_exposes_the_containers_ports_and_its_url() -> None:
    from gitstage.workloads.service import render_service, service_url

    template = {
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "srv:1",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                },
                {"name": "metrics", "image": "m:1", "ports": [{"containerPort": 9090}]},
            ]
        }
    }
    assert render_service(OWNER, binding(template=template)) is None  # not asked for
    exposed = binding(template=template, service={"type": "ClusterIP"})
    service = render_service(OWNER, exposed)
    assert service is not None
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
        {"name": "port-9090", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
    ]
    assert service["spec"]["selector"] == {
        "gitstage.dev/registry": "registry",
        "gitstage.dev/deployment": "churn-prod",
    }
    assert service["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert service_url(exposed, "ml") == "http://churn-prod.ml.svc:8080"
    assert render_service(OWNER, binding(service={})) is None  # no port declared: no Service

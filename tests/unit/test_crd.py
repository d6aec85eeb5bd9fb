"""The committed CRD is generated from the pydantic models; any drift fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from gitstage.resources import v1alpha1 as v1
from gitstage.resources.crd import custom_resource_definition, render_crd_yaml

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "modelregistries.gitstage.dev.yaml"


def test_committed_crd_matches_the_models() -> None:
    assert COMMITTED.read_text() == render_crd_yaml(), (
        "crds/ drifted from gitstage.resources.v1alpha1: run `gitstage crds -o crds`"
    )


def _walk(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def test_schema_is_structural() -> None:
    schema = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    nodes = _walk(schema)
    forbidden = {"$ref", "$defs", "anyOf", "title", "additionalProperties"}
    assert not [n for n in nodes if forbidden & set(n)]
    binding = schema["properties"]["spec"]["properties"]["deployments"]
    assert binding["x-kubernetes-list-map-keys"] == ["name"]
    rules = binding["items"]["x-kubernetes-validations"]
    assert rules[0]["rule"] == v1.ONE_OF_STAGE_OR_VERSION
    assert yaml.safe_load(render_crd_yaml())["metadata"]["name"] == "modelregistries.gitstage.dev"


def _binding(**overrides: object) -> dict[str, object]:
    binding: dict[str, object] = {
        "name": "churn-prod",
        "artifact": "churn",
        "stage": "prod",
        "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
    }
    binding.update(overrides)
    return binding


def test_spec_defaults_and_aliases() -> None:
    spec = v1.ModelRegistrySpec.model_validate(
        {"source": {"url": "https://git.example/registry.git"}, "deployments": [_binding()]}
    )
    assert spec.source.branch == "main"
    assert spec.source.interval == "1m"
    assert spec.resolution.sort is v1.VersionSort.TIMESTAMP
    assert spec.deployments[0].model_path == "/mnt/models"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stage": None}, "exactly one of stage or version"),
        ({"version": "v1.0.0"}, "exactly one of stage or version"),
        ({"name": "Churn_Prod"}, "String should match pattern"),
        ({"artifact": "churn-"}, "String should match pattern"),
        ({"template": {"spec": {"containers": []}}}, "at least one container"),
        ({"replicas": -1}, "greater than or equal to 0"),
    ],
)
def test_invalid_bindings_are_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        v1.DeploymentBinding.model_validate(_binding(**overrides))


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:s3cret@git.example/registry.git",
        "http://x:y@127.0.0.1:8080/r.git",
        "ssh://git:pw@git.example/r.git",
    ],
)
def test_a_source_url_with_a_password_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="must not hold a password"):
        v1.GitSource(url=url)


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example/registry.git",
        "https://alice@git.example/registry.git",  # a user name alone is no secret
        "git@git.example:org/registry.git",
        "ssh://git@git.example:2222/registry.git",
        "https://git.example/a:b@c",  # an @ in the path, not userinfo
    ],
)
def test_source_urls_without_a_password_are_accepted(url: str) -> None:
    assert v1.GitSource(url=url).url == url

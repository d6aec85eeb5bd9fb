"""The chart under test: helm and kubeconform from the pinned Go modules, rendering, validation."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gitstage.dev.binaries import binaries_dir
from tests.support.kubeschemas import (
    LOCATION_TEMPLATE,
    write_builtin_schemas,
    write_crd_schemas,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "gitstage"
CRD_FILE = ROOT / "crds" / "modelregistries.gitstage.dev.yaml"
KUBECONFORM_SCRIPT = ROOT / "tests" / "cluster" / "build-kubeconform.sh"
Manifest = dict[str, Any]


@cache
def kubernetes_version() -> str:
    """The version the test control plane runs (and helm renders for)."""
    for line in (ROOT / "tests" / "cluster" / "go" / "k8s" / "go.mod").read_text().splitlines():
        fields = line.split()
        if fields[:1] == ["k8s.io/kubernetes"]:
            return fields[1]
    raise LookupError("k8s.io/kubernetes is not pinned in tests/cluster/go/k8s/go.mod")


def helm_binary() -> Path:
    return binaries_dir() / "helm"


@cache
def kubeconform_dir() -> Path:
    """bin/kubeconform and openapi/swagger.json, built (or found cached) by the script."""
    result = subprocess.run(
        [str(KUBECONFORM_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def helm(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """helm with its config, cache and data under `home`, never the user's."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [str(helm_binary()), *args], env=env, capture_output=True, text=True, check=check
    )


@dataclass(frozen=True)
class Rendered:
    text: str
    objects: list[Manifest]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> Manifest:
        found = self.of_kind(kind)
        assert len(found) == 1, f"{len(found)} {kind} objects rendered"
        return found[0]


def values_file(directory: Path, values: dict[str, Any]) -> Path:
    path = directory / "values.json"
    path.write_text(json.dumps(values))
    return path


def render(
    home: Path,
    values: dict[str, Any] | None = None,
    *,
    release: str = "gs",
    namespace: str = "gitstage-system",
) -> Rendered:
    """`helm template` of the chart, as the pinned Kubernetes version."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    args += ["--kube-version", kubernetes_version()]
    if values is not None:
        args += ["--values", str(values_file(home, values))]
    text = helm(home, *args).stdout
    objects = [o for o in yaml.safe_load_all(text) if o]
    return Rendered(text, objects)


@cache
def schema_dir(directory: Path) -> Path:
    """Strict schemas of every built-in kind, the ModelRegistry CRD and the monitoring CRDs."""
    swagger = json.loads((kubeconform_dir() / "openapi" / "swagger.json").read_text())
    write_builtin_schemas(swagger, directory)
    write_crd_schemas(yaml.safe_load(CRD_FILE.read_text()), directory)
    # ServiceMonitor, PodMonitor and PrometheusRule, from the pinned prometheus-operator module.
    for crd in sorted((kubeconform_dir() / "crds").glob("*.yaml")):
        write_crd_schemas(yaml.safe_load(crd.read_text()), directory)
    return directory


def kubeconform(schemas: Path, manifests: str) -> subprocess.CompletedProcess[str]:
    """kubeconform -strict on a YAML stream, with local schemas only (no download, no skip)."""
    return subprocess.run(
        [
            str(kubeconform_dir() / "bin" / "kubeconform"),
            "-strict",
            "-summary",
            "-output",
            "text",
            "-schema-location",
            str(schemas / LOCATION_TEMPLATE),
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
        check=False,
    )

"""Strict JSON schemas for kubeconform, made offline from OpenAPI documents.

kubeconform downloads its schemas by default; here they are generated instead:
- built-in kinds from api/openapi-spec/swagger.json of the pinned k8s.io/kubernetes Go module
  (the version the test control plane runs; tests/cluster/build-kubeconform.sh copies it);
- custom resources from a CRD's openAPIV3Schema.
Strict as kubeconform's `-strict` schemas: an object with listed properties admits no others
(unless it preserves unknown fields); int-or-string and quantities accept both JSON types.
Each file is `<kind>-<group prefix>-<version>.json`, kubeconform's `{{ .ResourceKind }}{{
.KindSuffix }}.json`, and carries only the definitions its kind reaches.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Schema = dict[str, Any]
REF_PREFIX = "#/definitions/"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SINGLE_SCHEMAS = ("items", "additionalProperties", "not")
LOCATION_TEMPLATE = "{{ .ResourceKind }}{{ .KindSuffix }}.json"


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str

    @property
    def file_name(self) -> str:
        """kubeconform's name for it: lower-case kind, first label of the group, version."""
        prefix = f"-{self.group.split('.')[0]}" if self.group else ""
        return f"{self.kind.lower()}{prefix}-{self.version}.json".lower()


def write_builtin_schemas(swagger: Schema, out: Path) -> list[Kind]:
    """One schema file per group/version/kind of the OpenAPI v2 document."""
    definitions: dict[str, Schema] = swagger["definitions"]
    strict = {name: _strict(body) for name, body in definitions.items()}
    strict[QUANTITY] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
    written: list[Kind] = []
    for name, kind in _kinds(definitions):
        if any(kind.file_name == other.file_name for other in written):
            raise ValueError(f"two kinds share the schema file {kind.file_name}")
        reached = {n: strict[n] for n in _closure(name, strict)}
        schema = {"$ref": REF_PREFIX + name, "definitions": reached}
        _write(out / kind.file_name, schema)
        written.append(kind)
    return written


def write_crd_schemas(crd: Schema, out: Path) -> list[Kind]:
    """One schema file per served version of a CustomResourceDefinition."""
    spec = crd["spec"]
    written = []
    for version in spec["versions"]:
        kind = Kind(spec["group"], version["name"], spec["names"]["kind"])
        _write(out / kind.file_name, _strict(version["schema"]["openAPIV3Schema"]))
        written.append(kind)
    return written


def _kinds(definitions: dict[str, Schema]) -> Iterator[tuple[str, Kind]]:
    for name, body in definitions.items():
        gvks = body.get("x-kubernetes-group-version-kind") or []
        # Shared types (DeleteOptions, WatchEvent) list many kinds: they are not resources.
        if len(gvks) == 1:
            gvk = gvks[0]
            yield name, Kind(gvk["group"], gvk["version"], gvk["kind"])


def _closure(root: str, definitions: dict[str, Schema]) -> set[str]:
    seen: set[str] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending += _refs(definitions[name])
    return seen


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref[len(REF_PREFIX) :]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _strict(schema: Schema) -> Schema:
    """A copy where listed properties are the only ones allowed, and int-or-string is both.

    Walks schema keywords only: a property may itself be named `format` or `properties`.
    """
    if schema.get("format") == "int-or-string" or schema.get("x-kubernetes-int-or-string") is True:
        return copy.deepcopy(INT_OR_STRING)
    result = dict(schema)
    for keyword in SCHEMA_MAPS:
        if isinstance(schema.get(keyword), dict):
            result[keyword] = {name: _strict(sub) for name, sub in schema[keyword].items()}
    for keyword in SCHEMA_LISTS:
        if isinstance(schema.get(keyword), list):
            result[keyword] = [_strict(sub) for sub in schema[keyword]]
    for keyword in SINGLE_SCHEMAS:
        if isinstance(schema.get(keyword), dict):
            result[keyword] = _strict(schema[keyword])
    preserves = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in schema and "additionalProperties" not in schema and not preserves:
        result["additionalProperties"] = False
    return result


def _write(path: Path, schema: Schema) -> None:
    path.write_text(json.dumps(schema, sort_keys=True))

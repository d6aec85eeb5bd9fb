"""`artifacts.yaml`: GTO's annotation index (name -> type, path, labels, description, custom).

Annotations are plain frozen dataclasses; the YAML loader and the pydantic schema that validates
them are imported only when a file is parsed (a read served from the object cache parses none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitstage.domain.registry.files import INDEX_FILE
from gitstage.domain.registry.names import is_valid_name


@dataclass(frozen=True)
class ArtifactAnnotation:
    """One entry of artifacts.yaml, with GTO's defaults; unknown keys are ignored as GTO does."""

    type: str | None = None
    path: str | None = None
    virtual: bool = True
    labels: list[str] = field(default_factory=list)
    description: str = ""
    custom: Any = None

    def as_dict(self) -> dict[str, Any]:
        """Fields in GTO's `model_dump` order."""
        return {
            "type": self.type,
            "path": self.path,
            "virtual": self.virtual,
            "labels": list(self.labels),
            "description": self.description,
            "custom": self.custom,
        }


class CorruptIndexError(ValueError):
    """artifacts.yaml that GTO would refuse ("doesn't conform to GTO format")."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{INDEX_FILE} at {where} doesn't conform to GTO format: {reason}")


def parse_index(text: bytes | str, where: str) -> dict[str, ArtifactAnnotation]:
    """Parse and validate artifacts.yaml; `where` names the revision in error messages."""
    from gitstage.domain.registry.yaml12 import YamlError, load_yaml

    try:
        content = load_yaml(text)
    except YamlError as error:
        raise CorruptIndexError(where, _first_line(str(error))) from None
    index = _plain_index(content)
    if index is None:
        index = _validated_index(content, where)
    # gto 1.10.1 checks only the artifact names here (`Index.read_state`); its label and type
    # checks run on writes, so `labels: [Major version]` or `type: my model` read fine.
    for name in index:
        if not is_valid_name(name):
            raise CorruptIndexError(where, f"invalid artifact name {name!r}")
    return index


_FIELDS = ("type", "path", "virtual", "labels", "description", "custom")


def _plain_index(content: object) -> dict[str, ArtifactAnnotation] | None:
    """The index when every value has exactly the type the schema asks for (what pydantic
    would return unchanged); None for anything else, which the schema then validates. Saves
    importing pydantic (0.1 s) on the common files."""
    if not isinstance(content, dict):
        return None
    index = {}
    for name, entry in content.items():
        if type(name) is not str or not isinstance(entry, dict):
            return None
        kind, path, virtual, labels, description, custom = (
            entry.get(key, _MISSING) for key in _FIELDS
        )
        if not (
            (kind is _MISSING or kind is None or type(kind) is str)
            and (path is _MISSING or path is None or type(path) is str)
            and (virtual is _MISSING or type(virtual) is bool)
            and (labels is _MISSING or (type(labels) is list and _all_str(labels)))
            and (description is _MISSING or type(description) is str)
        ):
            return None
        index[name] = ArtifactAnnotation(
            None if kind is _MISSING else kind,
            None if path is _MISSING else path,
            True if virtual is _MISSING else virtual,
            [] if labels is _MISSING else list(labels),
            "" if description is _MISSING else description,
            None if custom is _MISSING else custom,
        )
    return index


_MISSING: Any = object()


def _all_str(values: list[Any]) -> bool:
    return all(type(value) is str for value in values)


def _validated_index(content: object, where: str) -> dict[str, ArtifactAnnotation]:
    from pydantic import ValidationError

    from gitstage.domain.registry.schemas import INDEX_SCHEMA

    try:
        validated = INDEX_SCHEMA.validate_python(content)
    except ValidationError as error:
        raise CorruptIndexError(where, _first_line(str(error.errors()[0]["msg"]))) from None
    return {
        name: ArtifactAnnotation(e.type, e.path, e.virtual, e.labels, e.description, e.custom)
        for name, e in validated.items()
    }


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "empty"

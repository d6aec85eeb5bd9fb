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
    from pydantic import ValidationError

    from gitstage.domain.registry.schemas import INDEX_SCHEMA
    from gitstage.domain.registry.yaml12 import YamlError, load_yaml

    try:
        content = load_yaml(text)
    except YamlError as error:
        raise CorruptIndexError(where, _first_line(str(error))) from None
    try:
        validated = INDEX_SCHEMA.validate_python(content)
    except ValidationError as error:
        raise CorruptIndexError(where, _first_line(str(error.errors()[0]["msg"]))) from None
    index = {
        name: ArtifactAnnotation(e.type, e.path, e.virtual, e.labels, e.description, e.custom)
        for name, e in validated.items()
    }
    # gto 1.10.1 checks only the artifact names here (`Index.read_state`); its label and type
    # checks run on writes, so `labels: [Major version]` or `type: my model` read fine.
    for name in index:
        if not is_valid_name(name):
            raise CorruptIndexError(where, f"invalid artifact name {name!r}")
    return index


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "empty"

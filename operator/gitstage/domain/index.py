"""`artifacts.yaml`: GTO's annotation index (name -> type, path, labels, description, custom)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from gitstage.domain.names import is_valid_name

INDEX_FILE = "artifacts.yaml"


class ArtifactAnnotation(BaseModel):
    """One entry of artifacts.yaml, with GTO's defaults; unknown keys are ignored as GTO does."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str | None = None
    path: str | None = None
    virtual: bool = True
    labels: list[str] = []
    description: str = ""
    custom: Any = None


_INDEX = TypeAdapter(dict[str, ArtifactAnnotation])


class CorruptIndexError(ValueError):
    """artifacts.yaml that GTO would refuse ("doesn't conform to GTO format")."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{INDEX_FILE} at {where} doesn't conform to GTO format: {reason}")


def parse_index(text: bytes | str, where: str) -> dict[str, ArtifactAnnotation]:
    """Parse and validate artifacts.yaml; `where` names the revision in error messages."""
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CorruptIndexError(where, _first_line(str(error))) from None
    try:
        index = _INDEX.validate_python(content)
    except ValidationError as error:
        raise CorruptIndexError(where, _first_line(str(error.errors()[0]["msg"]))) from None
    for name, annotation in index.items():
        for value, what in _names_of(name, annotation):
            if not is_valid_name(value):
                raise CorruptIndexError(where, f"invalid {what} {value!r}")
    return index


def _names_of(name: str, annotation: ArtifactAnnotation) -> list[tuple[str, str]]:
    names = [(name, "artifact name"), *((label, "label") for label in annotation.labels)]
    if annotation.type:
        names.append((annotation.type, "type"))
    return names


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "empty"

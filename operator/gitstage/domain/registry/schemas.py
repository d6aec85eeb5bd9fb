"""Pydantic schemas that validate `.gto` and artifacts.yaml as GTO does (same error messages).

Imported only when there is something to validate: the values they produce are copied into the
plain dataclasses of config.py and index.py, which the hot read path uses without pydantic.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, field_validator

from gitstage.domain.registry.files import INDEX_FILE
from gitstage.domain.registry.names import check_name


class RegistryConfigSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    stages: list[str] | None = None
    types: list[str] | None = None
    index: str = INDEX_FILE

    @field_validator("stages", "types")
    @classmethod
    def _names(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            check_name(value, "stage or type name")
        return values


class ArtifactAnnotation(BaseModel):
    """Named like the dataclass it fills: pydantic puts the name in its error messages."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str | None = None
    path: str | None = None
    virtual: bool = True
    labels: list[str] = []
    description: str = ""
    custom: Any = None


INDEX_SCHEMA = TypeAdapter(dict[str, ArtifactAnnotation])

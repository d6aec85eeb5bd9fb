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
    """Every key GTO's settings know, checked as GTO checks them: an unknown key, or a known one
    of the wrong type, makes GTO refuse the file (and every registry command with it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: list[str] | None = None
    types: list[str] | None = None
    index: str = INDEX_FILE
    # Read by GTO only (output and plugins); validated so that gitstage refuses what GTO does.
    emojis: bool = True
    log_level: str = "INFO"
    debug: bool = False
    enrichments: list[Any] = []
    autoload_enrichments: bool = True
    config_file_name: Any = None

    @field_validator("enrichments")
    @classmethod
    def _no_plugins(cls, values: list[Any]) -> list[Any]:
        if values:  # GTO 1.10 loads each as an enrichment plugin; none but its own exists
            raise ValueError("enrichment plugins are not supported")
        return values

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

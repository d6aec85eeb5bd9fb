"""`.gto`, GTO's registry configuration: allowed stages and the annotation file name."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from gitstage.domain.index import INDEX_FILE
from gitstage.domain.names import check_name

CONFIG_FILE = ".gto"


class WrongConfigError(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"Wrong config file '{path}': {reason}")


class RegistryConfig(BaseModel):
    """The keys that change what `show` prints; others (emojis, log level) are ignored."""

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


def parse_config(text: str | None, path: str, environ: Mapping[str, str]) -> RegistryConfig:
    """Merge `.gto` (keys are case-insensitive) under `GTO_*` environment variables."""
    try:
        loaded = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        raise WrongConfigError(path, "not valid YAML") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise WrongConfigError(path, "expected a mapping")
    values: dict[str, Any] = {str(k).lower(): v for k, v in (loaded or {}).items()}
    for key in ("stages", "types", "index"):
        raw = environ.get(f"GTO_{key.upper()}")
        if raw is not None:
            values[key] = json.loads(raw) if key != "index" else raw
    try:
        return RegistryConfig.model_validate(values)
    except ValidationError as error:
        raise WrongConfigError(path, str(error.errors()[0]["msg"])) from None

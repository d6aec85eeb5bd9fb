"""`.gto`, GTO's registry configuration: allowed stages and the annotation file name.

A plain dataclass: `gitstage show` on a repository without `.gto` (the common case) never pays
for importing a YAML parser or pydantic; both are imported only to read a `.gto` or `GTO_*` value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitstage.domain.registry.files import INDEX_FILE

_KEYS = ("stages", "types", "index")


class WrongConfigError(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"Wrong config file '{path}': {reason}")


@dataclass(frozen=True)
class RegistryConfig:
    """The keys that change what `show` prints; the others GTO knows (emojis, log level) are
    validated, then ignored."""

    stages: list[str] | None = None
    types: list[str] | None = None
    index: str = INDEX_FILE


def parse_config(text: str | None, path: str, environ: Mapping[str, str]) -> RegistryConfig:
    """Merge `.gto` (keys are case-insensitive) under `GTO_*` environment variables."""
    values: dict[str, Any] = {}
    if text:
        from gitstage.domain.registry.yaml12 import UnreadableYamlError, YamlError, load_yaml

        try:
            loaded = load_yaml(text)
        except UnreadableYamlError as error:
            raise WrongConfigError(path, str(error)) from None
        except YamlError:
            raise WrongConfigError(path, "not valid YAML") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise WrongConfigError(path, "expected a mapping")
        values = {str(k).lower(): v for k, v in (loaded or {}).items()}
    for key in _KEYS:
        raw = environ.get(f"GTO_{key.upper()}")
        if raw is not None:
            values[key] = json.loads(raw) if key != "index" else raw
    return _validated(values, path) if values else RegistryConfig()


def _validated(values: dict[str, Any], path: str) -> RegistryConfig:
    from pydantic import ValidationError

    from gitstage.domain.registry.schemas import RegistryConfigSchema

    try:
        config = RegistryConfigSchema.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        reason = f"{where}: {first['msg']}" if where else str(first["msg"])
        raise WrongConfigError(path, reason) from None
    return RegistryConfig(stages=config.stages, types=config.types, index=config.index)

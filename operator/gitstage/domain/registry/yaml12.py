"""YAML as GTO reads it: ruamel's safe, pure-Python loader (YAML 1.2).

PyYAML speaks YAML 1.1, where `off` is False, `0o10` a string, `010` eight and `1e3` a string;
GTO's ruamel reads `'off'`, 8, 10 and 1000.0, and refuses duplicate keys. Using the same loader
keeps artifacts.yaml and `.gto` values (and their errors) the same as gto's.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gitstage.domain.yaml_bounds import YamlBoundsError, check_expansion, check_size

YamlError = YAMLError


class UnreadableYamlError(YAMLError):
    """Not UTF-8, or over the bounds: a one-line reason worth showing as is (a syntax error's
    message is ruamel's multi-line report)."""


def load_yaml(text: str | bytes) -> Any:
    """One document; raises YamlError (a new loader per call: loaders keep parse state)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UnreadableYamlError(f"not UTF-8: {error}") from None
    try:
        check_size(text, "the document")
        check_expansion(YAML(typ="safe", pure=True).parse(text), "the document")
    except YamlBoundsError as error:
        raise UnreadableYamlError(str(error)) from None
    return YAML(typ="safe", pure=True).load(text)

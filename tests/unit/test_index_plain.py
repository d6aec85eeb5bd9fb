"""artifacts.yaml of plain values is read without pydantic (index.py's `_plain_index`), and
exactly as the pydantic schema reads it; anything else is the schema's, errors included."""

from __future__ import annotations

import pytest

from gitstage.domain.registry import index
from gitstage.domain.registry.index import CorruptIndexError, parse_index
from gitstage.domain.registry.yaml12 import load_yaml

DOCUMENTS = (
    "churn:\n  type: model\n  path: models/churn.pkl\n",
    "churn: {}\n",
    "churn:\n  virtual: false\n  labels: [a, b]\n  description: d\n  custom: {x: [1, 2.5]}\n",
    "churn:\n  type: null\n  path: ~\n  other: ignored\n  1: also ignored\n",
    "a:\n  type: m\nb:\n  path: p\n  custom: 2024-01-01\n",
    "{}\n",
    # Values the schema coerces or refuses: never read by the plain path.
    "churn:\n  virtual: 'yes'\n",
    "churn:\n  virtual: 1\n",
    "churn:\n  virtual: null\n",
    "churn:\n  labels: null\n",
    "churn:\n  labels: [1, a]\n",
    "churn:\n  description: null\n",
    "churn:\n  type: 5\n",
    "churn:\n  path: [p]\n",
    "churn:\n",
    "churn: text\n",
    "1:\n  type: m\n",
    "- a\n- b\n",
    "just text\n",
    "",
    "Bad Name:\n  type: m\n",
)


def through_the_schema(text: str) -> object:
    try:
        return index._validated_index(load_yaml(text), "HEAD")
    except CorruptIndexError as error:
        return str(error)


def read(text: str) -> object:
    try:
        return parse_index(text, "HEAD")
    except CorruptIndexError as error:
        return str(error)


@pytest.mark.parametrize("text", DOCUMENTS)
def test_plain_values_read_as_the_schema_reads_them(text: str) -> None:
    if "Bad Name" in text:  # the name check follows either path
        assert "invalid artifact name 'Bad Name'" in str(read(text))
        return
    assert read(text) == through_the_schema(text)


def test_the_plain_path_takes_only_plain_values() -> None:
    taken = [text for text in DOCUMENTS if index._plain_index(load_yaml(text)) is not None]
    assert taken == [*DOCUMENTS[:6], DOCUMENTS[-1]]

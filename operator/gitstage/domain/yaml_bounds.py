"""Bounds for YAML read from a repository (artifacts.yaml, `.gto`, the policy, DVC files):
anyone who can push writes these files, and a 2 KB alias bomb expands to billions of nodes.

Before a document is constructed, its parse events are walked once: the size of every anchored
node is remembered, an alias counts as the size of what it names, and the walk stops as soon as
the expanded document would exceed MAX_NODES. The text itself is capped at MAX_BYTES.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000
_SIZED_ENDS = {"MappingEndEvent", "SequenceEndEvent"}
_STARTS = {"MappingStartEvent", "SequenceStartEvent"}


class YamlBoundsError(ValueError):
    """A document over the size or expansion bounds (its message is one line)."""


def check_size(text: str | bytes, what: str) -> None:
    if len(text) > MAX_BYTES:
        raise YamlBoundsError(f"{what} is {len(text)} bytes, over the limit of {MAX_BYTES}")


def check_expansion(events: Iterable[Any], what: str) -> None:
    """Raise if the document, with every alias expanded, would hold more than MAX_NODES nodes.
    Works on PyYAML's and ruamel's events alike (they share the class names)."""
    anchors: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = []  # (anchor, nodes so far) of open collections
    total = 0
    for event in events:
        kind = type(event).__name__
        if kind in _STARTS:
            stack.append((getattr(event, "anchor", None), 1))
            continue
        if kind == "ScalarEvent":
            size = 1
            _remember(anchors, getattr(event, "anchor", None), size)
        elif kind == "AliasEvent":
            size = anchors.get(getattr(event, "anchor", None) or "", 1)
        elif kind in _SIZED_ENDS:
            anchor, size = stack.pop()
            _remember(anchors, anchor, size)
        else:
            continue
        if stack:
            anchor, count = stack[-1]
            stack[-1] = (anchor, count + size)
            total = max(total, count + size)
        else:
            total = max(total, size)
        if total > MAX_NODES:
            raise YamlBoundsError(
                f"{what} expands to more than {MAX_NODES} nodes (aliases); refusing to read it"
            )


def _remember(anchors: dict[str, int], anchor: str | None, size: int) -> None:
    if anchor:
        anchors[anchor] = size


def safe_load_bounded(text: str | bytes, what: str) -> Any:
    """PyYAML's safe_load within the bounds; YamlBoundsError or yaml.YAMLError otherwise."""
    import yaml

    check_size(text, what)
    check_expansion(yaml.parse(text, Loader=yaml.SafeLoader), what)
    return yaml.safe_load(text)

"""Bounds for YAML read from a repository (artifacts.yaml, `.gto`, the policy, DVC files):
anyone who can push writes these files, and a 2 KB alias bomb expands to billions of nodes.

Before a document is constructed, its parse events are walked once: the size of every anchored
node is remembered, an alias counts as the size of what it names, and the walk stops as soon as
the expanded document would exceed MAX_NODES, or its collections nest deeper than MAX_DEPTH (the
loaders build nested collections recursively: `[[[[...` would exhaust Python's stack). The text
itself is capped at MAX_BYTES; callers that hold a blob's size check it before reading it.

Light on imports: the `.gto` reader on `gitstage show`'s path checks MAX_BYTES.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own costs an import; mypy reads any TYPE_CHECKING as True
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

MAX_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 100
_SIZED_ENDS = {"MappingEndEvent", "SequenceEndEvent"}
_STARTS = {"MappingStartEvent", "SequenceStartEvent"}


class YamlBoundsError(ValueError):
    """A document over the size or expansion bounds (its message is one line)."""


def check_size(text: str | bytes, what: str) -> None:
    check_length(len(text), what)


def check_length(length: int, what: str) -> None:
    """`length`: of the text, or of the blob holding it (known before the blob is read)."""
    if length > MAX_BYTES:
        raise YamlBoundsError(f"{what} is {length} bytes, over the limit of {MAX_BYTES}")


def check_expansion(events: Iterable[Any], what: str) -> None:
    """Raise if the document, with every alias expanded, would hold more than MAX_NODES nodes,
    or nest deeper than MAX_DEPTH. Works on PyYAML's and ruamel's events alike (they share the
    class names)."""
    anchors: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = []  # (anchor, nodes so far) of open collections
    total = 0
    for event in events:
        kind = type(event).__name__
        if kind in _STARTS:
            stack.append((getattr(event, "anchor", None), 1))
            if len(stack) > MAX_DEPTH:
                raise YamlBoundsError(
                    f"{what} nests deeper than {MAX_DEPTH} levels; refusing to read it"
                )
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

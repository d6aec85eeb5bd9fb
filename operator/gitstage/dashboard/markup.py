"""A few lines of HTML building: text is escaped unless it is `Markup` built here.

Every string from a registry or the cluster (tag messages, names, errors) goes through `tag`'s
children or attributes, so it is escaped exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

# Elements that take no closing tag.
_VOID = frozenset({"br", "img", "input", "link", "meta"})


class Markup(str):
    """HTML that is already safe."""

    __slots__ = ()


def text(value: object) -> Markup:
    return value if isinstance(value, Markup) else Markup(escape(str(value)))


def join(children: Iterable[object]) -> Markup:
    parts: list[str] = []
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, str):
            parts.append(text(child))
        elif isinstance(child, Iterable):
            parts.append(join(child))
        else:
            parts.append(text(child))
    return Markup("".join(parts))


def tag(name: str, attrs: Mapping[str, object] | None = None, *children: object) -> Markup:
    """`<name attrs>children</name>`; an attribute whose value is None or False is left out,
    True writes it bare."""
    rendered = "".join(_attribute(k, v) for k, v in (attrs or {}).items())
    if name in _VOID:
        return Markup(f"<{name}{rendered}>")
    return Markup(f"<{name}{rendered}>{join(children)}</{name}>")


def _attribute(name: str, value: object) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return f" {name}"
    return f' {name}="{escape(str(value), quote=True)}"'

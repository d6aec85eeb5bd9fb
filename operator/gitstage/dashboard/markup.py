"""A few lines of HTML building: text is escaped unless it is `Markup` built here.

Every string from a registry or the cluster (tag messages, names, errors) goes through `tag`'s
children or attributes, so it is escaped exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from html import escape

# Elements that take no closing tag.
_VOID = frozenset({"br", "img", "input", "link", "meta"})


class Markup(str):
    """HTML that is already safe."""

    __slots__ = ()


# Characters a page must not pass through as they are: C0 and C1 controls but tab, newline and
# carriage return (a terminal's escapes, a bell), and the bidirectional overrides and isolates,
# which can show a tag message reversed (`\u202e`). Each is shown as its code point instead.
_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(value: str) -> str:
    return _HIDDEN.sub(lambda found: f"\\u{ord(found[0]):04x}", value)


def text(value: object) -> Markup:
    return value if isinstance(value, Markup) else Markup(escape(_visible(str(value))))


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
    return f' {name}="{escape(_visible(str(value)), quote=True)}"'

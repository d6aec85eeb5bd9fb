"""Edit artifacts.yaml in a work tree, keeping its comments and order (ruamel's round trip)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from gitstage.adapters.git.atomic_file import write_atomically
from gitstage.domain.fetch.links import CUSTOM_KEY, LINK_KEY
from gitstage.domain.registry.files import INDEX_FILE
from gitstage.domain.registry.index import parse_index
from gitstage.domain.yaml_bounds import MAX_BYTES


def write_link(workdir: Path, name: str, link: dict[str, str]) -> Path:
    """Set `NAME.custom.gitstage.link` (other keys of the entry are kept); returns the file.

    The result is parsed as gto parses it before it replaces the file.
    """
    path = workdir / INDEX_FILE
    yaml = YAML()  # round trip
    yaml.indent(mapping=2, sequence=4, offset=2)
    document: Any = yaml.load(_bounded_text(path)) if path.exists() else None
    if document is None:
        document = CommentedMap()
    entry = document.setdefault(name, CommentedMap())
    if entry is None:
        entry = document[name] = CommentedMap()
    custom = entry.setdefault("custom", CommentedMap())
    ours = custom.setdefault(CUSTOM_KEY, CommentedMap())
    ours[LINK_KEY] = CommentedMap(link)
    out = io.StringIO()
    yaml.dump(document, out)
    text = out.getvalue()
    parse_index(text, f"{INDEX_FILE} (as written)")  # never write what gto would refuse
    write_atomically(str(path), text.encode("utf-8"))
    return path


def _bounded_text(path: Path) -> str:
    """The file as it is, parsed as gto would parse it first: a file pulled from anywhere may
    be an alias bomb, too large, or not UTF-8 (CorruptIndexError, before the round trip)."""
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)  # over the bound: refused without reading the rest
    parse_index(data, "the work tree")
    return data.decode("utf-8")

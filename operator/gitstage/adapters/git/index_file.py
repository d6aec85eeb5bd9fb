"""Edit artifacts.yaml in a work tree, keeping its comments and order (ruamel's round trip)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from gitstage.adapters.git.atomic_file import write_atomically
from gitstage.domain.fetch.errors import BadInputError
from gitstage.domain.fetch.links import CUSTOM_KEY, LINK_KEY, ArtifactLink, link_of
from gitstage.domain.registry.files import INDEX_FILE
from gitstage.domain.registry.index import ArtifactAnnotation, parse_index
from gitstage.domain.yaml_bounds import MAX_BYTES


def write_link(workdir: Path, name: str, link: dict[str, str]) -> Path:
    """Set `NAME.custom.gitstage.link` (other keys of the entry are kept); returns the file.

    The result is parsed as gto parses it before it replaces the file.
    """
    path, text = linked_index(workdir, name, link)
    write_atomically(str(path), text.encode("utf-8"))
    return path


def linked_index(workdir: Path, name: str, link: dict[str, str]) -> tuple[Path, str]:
    """artifacts.yaml's path and the text `write_link` would write there, without writing.

    Raises BadInputError when the file is not a regular file (a symlink, a directory, a FIFO),
    when the entry cannot hold the link, or when the edit would change any other entry (one
    that shares a YAML anchor, alias or merge key with NAME).
    """
    path = workdir / INDEX_FILE
    original, before = _bounded_text(path)
    yaml = YAML()  # round trip
    yaml.indent(mapping=2, sequence=4, offset=2)
    document: Any = yaml.load(original) if original is not None else None
    if document is None:
        document = CommentedMap()
    _link_section(document, name)[LINK_KEY] = CommentedMap(link)
    out = io.StringIO()
    yaml.dump(document, out)
    text = out.getvalue()
    after = parse_index(text, f"{INDEX_FILE} (as written)")  # never write what gto would refuse
    _require_only(name, link, before, after)
    return path, text


def _link_section(document: Any, name: str) -> Any:
    """The `custom.gitstage` mapping of entry NAME, created where absent (or null)."""
    where = f"{INDEX_FILE}: artifact {name!r}"
    entry = _mapping_at(document, name, where)
    custom = _mapping_at(entry, "custom", f"{where}: custom")
    return _mapping_at(custom, CUSTOM_KEY, f"{where}: custom.{CUSTOM_KEY}")


def _mapping_at(parent: Any, key: str, where: str) -> Any:
    value = parent.get(key)
    if value is None:
        value = parent[key] = CommentedMap()
    if not isinstance(value, dict):
        raise BadInputError(
            f"{where} is {_kind(value)}, not a mapping: it cannot hold the link (fix it by hand)"
        )
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {str(value)[:40]!r}"


def _require_only(
    name: str,
    link: dict[str, str],
    before: dict[str, ArtifactAnnotation],
    after: dict[str, ArtifactAnnotation],
) -> None:
    """The edit set NAME's link and changed no other entry (YAML aliases share nodes)."""
    changed = sorted(
        other
        for other in before.keys() | after.keys()
        if other != name and not _same(before.get(other), after.get(other))
    )
    if changed:
        raise BadInputError(
            f"{INDEX_FILE}: artifact {name!r} shares YAML anchors, aliases or merge keys with "
            f"{', '.join(map(repr, changed))}: linking it would change them too (edit it by hand)"
        )
    if link_of(name, after[name]) != ArtifactLink.model_validate(link):
        raise BadInputError(
            f"{INDEX_FILE}: artifact {name!r} takes its custom.{CUSTOM_KEY} from a YAML merge "
            "key: the link would not apply (edit it by hand)"
        )


def _same(left: object, right: object) -> bool:
    """Equal, or equal but for NaNs (`.nan` is never equal to itself)."""
    return left == right or repr(left) == repr(right)


def _bounded_text(path: Path) -> tuple[str | None, dict[str, ArtifactAnnotation]]:
    """The file as it is (None if there is none) and its entries, parsed as gto would parse
    it first: a file pulled from anywhere may be an alias bomb, too large, or not UTF-8
    (CorruptIndexError, before the round trip). Only a regular file is read: a symlink may
    lead out of the work tree, and a FIFO or a device would block or never end."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None, {}
    if not stat.S_ISREG(mode):  # refused before opening: opening a FIFO blocks
        raise _not_regular(path, _file_kind(mode))
    try:  # a regular file swapped for something else meanwhile: ELOOP, or fstat below
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise BadInputError(f"cannot read {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, _file_kind(mode))
        data = handle.read(MAX_BYTES + 1)  # over the bound: refused without reading the rest
    entries = parse_index(data, "the work tree")
    return data.decode("utf-8"), entries


def _not_regular(path: Path, kind: str) -> BadInputError:
    return BadInputError(f"{path} is {kind}, not a regular file: link edits only a regular file")


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a special file"

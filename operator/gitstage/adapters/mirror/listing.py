"""A remote's refs as the mirror sees them: one listing, its digest, and a listing updated from a
partial one (the refs a webhook named, re-read from the remote).

The digest covers the tag names, the objects they point at and the branch tip, so a listing
patched from a partial one has the digest a full listing of the same remote would have: the
next full poll then finds nothing changed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TAG_PREFIX = "refs/tags/"
PEELED = "^{}"
# One `OID<TAB>REF` line of `ls-remote` (or `OID REF` of for-each-ref), peeled lines included.
_LINE = re.compile(r"^([0-9a-f]{40,64})[\t ](\S[^\n]*)$", re.MULTILINE)


@dataclass(frozen=True)
class RefState:
    """One listing of the remote: tag name -> advertised object, the branch tip, their digest."""

    tags: Mapping[str, str]
    head: str
    digest: str


def listing_digest(tags: Mapping[str, str], head: str) -> str:
    """The digest of tags and branch tip, independent of the order they were listed in."""
    lines = "\n".join(f"{name}\0{tags[name]}" for name in sorted(tags))
    return hashlib.sha256(f"{head}\n{lines}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def parse_refs(out: str, head_ref: str) -> tuple[dict[str, str], str | None]:
    """Tags (peeled lines dropped) and the tip of `head_ref` in a listing; other refs (ls-remote
    patterns match ref tails: look-alikes) are left out."""
    tags: dict[str, str] = {}
    head: str | None = None
    for sha, ref in _LINE.findall(out):
        if ref.startswith(TAG_PREFIX):
            if not ref.endswith(PEELED):
                tags[ref[len(TAG_PREFIX) :]] = sha
        elif ref == head_ref:
            head = sha
    return tags, head


def patched(
    known: Mapping[str, str], prefixes: Iterable[str], listed: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """`known` tags with every tag under `prefixes` replaced by `listed` (the remote's tags under
    those prefixes, all of them): the new tags and the ones added or moved."""
    starts = tuple(prefixes)
    tags = {name: sha for name, sha in known.items() if not name.startswith(starts)}
    tags.update(listed)
    changed = {name: sha for name, sha in listed.items() if known.get(name) != sha}
    return tags, changed

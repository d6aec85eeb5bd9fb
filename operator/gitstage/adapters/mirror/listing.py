"""A remote's refs as the mirror sees them: one listing, its digest, and a listing updated from a
partial one (the refs a webhook named, re-read from the remote).

The digest covers the tag names, the objects they point at and the branch tip, so a listing
patched from a partial one has the digest a full listing of the same remote would have: the
next full poll then finds nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from hashlib import blake2b

TAG_PREFIX = "refs/tags/"
PEELED = "^{}"
# One `OID<TAB>REF` line of `ls-remote` (or `OID REF` of for-each-ref), peeled lines included.
_LINE = re.compile(r"^([0-9a-f]{40,64})[\t ](\S[^\n]*)$", re.MULTILINE)
_MASK = (1 << 128) - 1


@dataclass(frozen=True)
class RefState:
    """One listing of the remote: tag name -> advertised object, the branch tip, their digest."""

    tags: Mapping[str, str]
    head: str
    digest: str
    tags_sum: int = 0  # tags_sum() of `tags`, from which `digest` is made

    @classmethod
    def of(cls, tags: Mapping[str, str], head: str) -> RefState:
        total = tags_sum(tags)
        return cls(tags, head, _digest(total, head), total)


def tags_sum(tags: Mapping[str, str]) -> int:
    """A digest of tags that a change of a few updates in as many steps: the sum of a hash of
    each (name, object), modulo 2**128. The order of the listing does not matter."""
    return sum(map(_entry_hash, tags.items())) & _MASK


def _entry_hash(item: tuple[str, str]) -> int:
    data = f"{item[0]}\0{item[1]}".encode("utf-8", "surrogateescape")
    return int.from_bytes(blake2b(data, digest_size=16).digest(), "big")


def _digest(total: int, head: str) -> str:
    return blake2b(f"{head}\n{total:032x}".encode(), digest_size=8).hexdigest()


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


@dataclass(frozen=True)
class Patch:
    """A listing patched from a partial one, and how it differs from the one before."""

    refs: RefState
    changed: dict[str, str]  # tags added or moved
    deleted: list[str]


def patched(
    known: RefState, prefixes: Iterable[str], listed: Mapping[str, str], head: str
) -> Patch:
    """`known` with every tag under `prefixes` replaced by `listed` (the remote's tags under
    those prefixes, all of them) and the branch at `head`. Costs a scan of the names, not a
    rebuild of the listing or of its digest."""
    starts = tuple(prefixes)
    tags = dict(known.tags)
    total = known.tags_sum
    under = [name for name in tags if name.startswith(starts)]
    for name in under:
        total -= _entry_hash((name, tags.pop(name)))
    tags.update(listed)
    total = (total + sum(map(_entry_hash, listed.items()))) & _MASK
    changed = {name: sha for name, sha in listed.items() if known.tags.get(name) != sha}
    deleted = [name for name in under if name not in listed]
    return Patch(RefState(tags, head, _digest(total, head), total), changed, deleted)

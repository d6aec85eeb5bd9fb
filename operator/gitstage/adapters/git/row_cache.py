"""Each artifact's line of `gitstage show --json`, kept between runs, keyed by its tag refs.

When a tag changes, the result cache (result_cache.py) misses, but every artifact the change
does not name still has its line here: `show --json` then folds only the changed artifacts
(partition.py) and joins the lines. The file holds the lines of one basis: the request (flags,
code, `GTO_*` variables), HEAD and `.gto`; any other basis starts afresh. It sits beside the
other caches (`gitstage/rows-v1.cache`), written atomically as marshal behind a BLAKE2b
checksum; `GITSTAGE_CACHE=off` or `GITSTAGE_RESULT_CACHE=off` disables it with the result cache.
"""

from __future__ import annotations

import marshal
import os
from dataclasses import dataclass, field

from gitstage.adapters.git.object_cache import CACHE_DIR
from gitstage.adapters.git.result_cache import read_sealed, results_enabled, write_sealed
from gitstage.domain.registry.gto_json import ArtifactRow
from gitstage.domain.registry.partition import OrderKey

ROWS_FILE = "rows-v1.cache"
HeadFacts = tuple[str | None, list[str]]  # HEAD's commit, the artifacts in its artifacts.yaml
MAGIC = b"gitstage-rows\x00v1\n"


@dataclass(frozen=True)
class HeldRow:
    """One group's part of the document: its refs' digest, where its artifact comes, the line
    (None: no artifact, or one the view leaves out) and the stages it uses."""

    digest: bytes
    order: OrderKey | None
    row: ArtifactRow | None
    stages: tuple[str, ...]


@dataclass
class RowCache:
    """The stored lines of one repository (an unsaved, empty store when disabled)."""

    path: str | None
    basis: bytes = b""
    head: HeadFacts | None = None
    rows: dict[str, HeldRow] = field(default_factory=dict)

    @classmethod
    def open(cls, common_dir: str) -> RowCache:
        if not results_enabled():
            return cls(None)
        path = os.path.join(common_dir, CACHE_DIR, ROWS_FILE)
        return _load(path) or cls(path)

    def held_for(self, basis: bytes) -> tuple[dict[str, HeldRow], HeadFacts | None]:
        """The lines and HEAD facts stored for this basis (nothing for another)."""
        return (self.rows, self.head) if basis == self.basis else ({}, None)

    def save(self, basis: bytes, head: HeadFacts, rows: dict[str, HeldRow]) -> bool:
        """False when not written (disabled, or the directory refuses it); never raises."""
        if self.path is None:
            return False
        flat = {g: (r.digest, r.order, r.row, r.stages) for g, r in rows.items()}
        return write_sealed(self.path, MAGIC, marshal.dumps((basis, head, flat)))


def _load(path: str) -> RowCache | None:
    """The store in the file; None for anything but an intact file of this format."""
    payload = read_sealed(path, MAGIC)
    if payload is None:
        return None
    try:
        # Written by this module into the repository's own git dir, checked by its checksum first.
        basis, head, flat = marshal.loads(payload)  # noqa: S302
        rows = {g: HeldRow(d, o, r, tuple(s)) for g, (d, o, r, s) in flat.items()}
    except (ValueError, EOFError, TypeError, AttributeError):
        return None
    return RowCache(path, basis, head, rows)

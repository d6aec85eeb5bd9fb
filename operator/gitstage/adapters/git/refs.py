"""`check-ref`: the events a single tag created (what CI asks about a pushed tag)."""

from __future__ import annotations

import os
from typing import Any

from gitstage.adapters.git.reader import TAGS_PREFIX, read_registry
from gitstage.adapters.git.repository import open_repository
from gitstage.domain.registry.gto_json import check_ref_document
from gitstage.domain.registry.tags import parse_tag


def events_of_ref(path: str | os.PathLike[str], ref: str) -> list[dict[str, Any]]:
    """Empty for refs that are not GTO tags, do not exist, or are lightweight."""
    name = ref.removeprefix(TAGS_PREFIX)
    parsed = parse_tag(name)
    if parsed is None or TAGS_PREFIX + name not in open_repository(path).references:
        return []
    return check_ref_document(read_registry(path).state, parsed.artifact, name)

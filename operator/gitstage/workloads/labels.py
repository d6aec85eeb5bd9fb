"""Kubernetes-safe label values for GTO names (which may hold `/`, `:` and uppercase)."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63
_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def label_value(text: str) -> str:
    """A valid label value; names changed on the way get a short hash so they stay distinct."""
    cleaned = _EDGES.sub("", _INVALID.sub("-", text))
    if cleaned == text and len(text) <= MAX_LABEL:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = cleaned[: MAX_LABEL - len(digest) - 1].rstrip("-_.")
    return f"{head}-{digest}" if head else digest

"""Operator settings from the environment (GITSTAGE_*), read once at startup."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gitstage import __version__

DEFAULT_IMAGE = f"ghcr.io/gitstage/gitstage:{__version__}"
# "0": kopf does not watch CRDs or list namespaces (no cluster-scoped access needed).
SCANNING_ENV = "GITSTAGE_SCANNING"


@dataclass(frozen=True)
class OperatorSettings:
    fetcher_image: str
    cache_dir: Path
    scanning: bool = True

    @classmethod
    def from_env(cls) -> OperatorSettings:
        cache = os.environ.get("GITSTAGE_CACHE_DIR") or str(
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitstage" / "mirrors"
        )
        return cls(
            fetcher_image=os.environ.get("GITSTAGE_FETCHER_IMAGE", DEFAULT_IMAGE),
            cache_dir=Path(cache),
            scanning=os.environ.get(SCANNING_ENV, "1") != "0",
        )

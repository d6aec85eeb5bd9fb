"""What a cache was last synced to, stored in the cache so it survives restarts.

Written after the fetches succeed, atomically: a crash mid-sync leaves the previous state, and
the next sync fetches again (cheaply: only what is still missing).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

STATE_FILE = "gitstage-sync.json"


@dataclass(frozen=True)
class SyncState:
    digest: str
    head: str
    synced_at: datetime


def load_state(cache: Path) -> SyncState | None:
    try:
        raw = json.loads((cache / STATE_FILE).read_text())
        return SyncState(
            str(raw["digest"]), str(raw["head"]), datetime.fromisoformat(raw["synced_at"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: the next sync fetches


def save_state(cache: Path, state: SyncState) -> None:
    payload = {
        "digest": state.digest,
        "head": state.head,
        "synced_at": state.synced_at.isoformat(),
    }
    staging = cache / f".{STATE_FILE}.tmp"
    staging.write_text(json.dumps(payload))
    os.replace(staging, cache / STATE_FILE)

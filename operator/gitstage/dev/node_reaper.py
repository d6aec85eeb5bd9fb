"""The real node's reaper: `python -m gitstage.dev.node_reaper RECORD PARENT_PID`.

Started beside the node, it waits for SIGTERM, which comes from `stop()` or, through
PR_SET_PDEATHSIG, from the kernel when the process that started the node dies (even by
SIGKILL). Then it sweeps the node away and exits: 0 when nothing is left, 1 otherwise. It
holds the machine-wide node lock (inherited) until the sweep is done.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from gitstage.dev.node_sweep import NodeRecord, sweep

GLOBAL_DIR = Path("/run/gitstage-node")
GLOBAL_RECORD = GLOBAL_DIR / "record.json"


def main(argv: list[str]) -> int:
    record_path, parent = Path(argv[1]), int(argv[2])
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # also blocked before exec: no signal lost
    if os.getppid() == parent:
        signal.sigwait(stop)
    record = NodeRecord.load(record_path)
    if record is None:
        print(f"node-reaper: no record at {record_path}", file=sys.stderr)
        return 1
    left = sweep(record)
    for item in left:
        print(f"node-reaper: could not remove {item}", file=sys.stderr)
    if not left:
        forget(record)
        print(f"node-reaper: node in {record.root} removed", file=sys.stderr)
    return 1 if left else 0


def forget(record: NodeRecord) -> None:
    """Drop the machine-wide record if it still names this node."""
    current = NodeRecord.load(GLOBAL_RECORD)
    if current is not None and current.root == record.root:
        GLOBAL_RECORD.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

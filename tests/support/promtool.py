"""promtool, built from the pinned Go module (tests/cluster/build-promtool.sh, cached)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from tests.support.chart import ROOT

PROMTOOL_SCRIPT = ROOT / "tests" / "cluster" / "build-promtool.sh"


@cache
def promtool_binary() -> Path:
    result = subprocess.run([str(PROMTOOL_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1]) / "bin" / "promtool"


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool_binary()), *args], cwd=cwd, capture_output=True, text=True, check=False
    )

"""Locate the control-plane binaries: GITSTAGE_K8S_BIN, or build them (cached) from the repo."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
BUILD_SCRIPT = Path(__file__).resolve().parents[3] / "tests" / "cluster" / "build-binaries.sh"


class BinariesError(RuntimeError):
    pass


def binaries_dir() -> Path:
    override = os.environ.get("GITSTAGE_K8S_BIN")
    if override:
        return _checked(Path(override))
    if not BUILD_SCRIPT.is_file():
        raise BinariesError(
            "no Kubernetes binaries: set GITSTAGE_K8S_BIN or run from a gitstage checkout"
        )
    # The script prints progress on stderr (inherited) and the bin directory on its last line.
    result = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise BinariesError(f"building the Kubernetes binaries failed ({BUILD_SCRIPT})")
    return _checked(Path(result.stdout.strip().splitlines()[-1]))


def _checked(directory: Path) -> Path:
    missing = [name for name in REQUIRED if not (directory / name).is_file()]
    if missing:
        raise BinariesError(f"{directory} lacks {', '.join(missing)}")
    return directory

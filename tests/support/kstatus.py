"""kstatus (sigs.k8s.io/cli-utils' rules, built from its Go module) and Argo CD's health check
(the Lua script we ship, run by a real Lua interpreter), applied to a ModelRegistry object."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.chart import ROOT

BUILD_SCRIPT = ROOT / "tests" / "cluster" / "build-kstatus.sh"
ARGOCD_HEALTH = ROOT / "deploy" / "argocd" / "modelregistry-health.lua"


@cache
def kstatus_binary() -> Path:
    result = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1])


def kstatus(registry: dict[str, Any]) -> str:
    """InProgress, Failed, Current, Terminating or NotFound, as kstatus computes it."""
    result = subprocess.run(
        [str(kstatus_binary())],
        input=json.dumps(registry),
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(result.stdout)["status"])


def argocd_health(registry: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of the shipped health check, as Argo CD runs it: `obj` is the object."""
    import lupa

    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = runtime.eval("function(obj) " + ARGOCD_HEALTH.read_text() + " end")
    health = check(_to_lua(runtime, registry))
    return str(health["status"]), str(health["message"] or "")


def _to_lua(runtime: Any, value: Any) -> Any:
    """JSON as Argo CD hands it to Lua: objects and arrays become tables (arrays 1-based)."""
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value

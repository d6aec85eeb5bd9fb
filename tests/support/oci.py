"""Run a command in an image's root filesystem with runc, the way the chart runs its pods: the
image's user 10001 (or another), a read-only root, an empty tmpfs at /tmp (the emptyDir), no
capabilities, no privilege escalation. The host's network namespace is kept, so a container
reaches the test servers on loopback.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitstage.dev.images import ImageConfig

IMAGE_USER = (10001, 10001)
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


@dataclass(frozen=True)
class Bind:
    source: Path
    target: str
    writable: bool = False


def run_in_rootfs(
    rootfs: Path,
    config: ImageConfig,
    argv: Sequence[str],
    *,
    binds: Sequence[Bind] = (),
    env: Mapping[str, str] | None = None,
    entrypoint: bool = True,
    user: tuple[int, int] = IMAGE_USER,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`argv` after the image's entrypoint (or alone, `entrypoint=False`); stdout and stderr."""
    args = [*config.entrypoint, *argv] if entrypoint else list(argv)
    with tempfile.TemporaryDirectory(prefix="gitstage-runc-") as scratch:
        bundle = Path(scratch)
        spec = _spec(bundle, rootfs, config, args, binds, env or {}, user)
        (bundle / "config.json").write_text(json.dumps(spec))
        runc = ["runc", "--root", str(bundle / "state")]
        name = f"gitstage-test-{secrets.token_hex(4)}"
        try:
            return subprocess.run(
                [*runc, "run", "--bundle", str(bundle), name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:  # after a timeout the container is still there; otherwise runc removed it
            subprocess.run([*runc, "delete", "--force", name], capture_output=True, check=False)


def _spec(
    bundle: Path,
    rootfs: Path,
    config: ImageConfig,
    args: list[str],
    binds: Sequence[Bind],
    env: Mapping[str, str],
    user: tuple[int, int],
) -> dict[str, object]:
    """runc's default spec, changed to the pod's settings."""
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True, capture_output=True)
    spec = json.loads((bundle / "config.json").read_text())
    variables = dict(item.partition("=")[::2] for item in config.env) | dict(env)
    spec["process"].update(
        terminal=False,
        args=args,
        user={"uid": user[0], "gid": user[1]},
        env=[f"{key}={value}" for key, value in variables.items()],
        cwd=config.workdir,
        capabilities={name: [] for name in CAPABILITY_SETS},
        noNewPrivileges=True,
    )
    spec["root"] = {"path": str(rootfs), "readonly": True}
    tmp = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
    spec["mounts"] += [
        {**tmp, "options": ["nosuid", "nodev", "mode=1777"]},
        *(
            {
                "destination": bind.target,
                "type": "bind",
                "source": str(bind.source),
                "options": ["rbind", "rw" if bind.writable else "ro"],
            }
            for bind in binds
        ),
    ]
    namespaces = spec["linux"]["namespaces"]
    spec["linux"]["namespaces"] = [ns for ns in namespaces if ns["type"] != "network"]
    return dict(spec)

"""`gitstage dev cluster up|down|status`: the local control plane, for people."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from gitstage.cli.errors import CommandError
from gitstage.cli.flags import examples
from gitstage.cli.lazy import LazyGroup
from gitstage.dev.binaries import BinariesError
from gitstage.dev.cluster import NODES, ClusterError, ClusterInfo, LocalCluster
from gitstage.dev.processes import alive, names_path, runs_from, stop_process

REAPER_GRACE = 120  # the sweep waits for containers to die and cgroups to empty

DEFAULT_STATE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitstage" / "dev-cluster"
)

state_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE,
    show_default=True,
    help="Where the cluster keeps etcd data, keys, logs and its kubeconfig.",
)


@click.group(
    "dev",
    cls=LazyGroup,
    epilog=examples(
        "gitstage dev demo",
        "gitstage dev cluster up",
        "gitstage dev cluster up --nodes kwok",
        "gitstage dev image build",
    ),
)
def dev_group() -> None:
    """Development helpers."""


assert isinstance(dev_group, LazyGroup)
dev_group.add_lazy("image", "gitstage.cli.dev_image:image_group")


@dev_group.group("cluster")
def cluster_group() -> None:
    """A real Kubernetes control plane (etcd, apiserver, controllers) with one real node
    (kubelet, containerd, runc, kube-proxy; needs root) or KWOK's fake nodes."""


@cluster_group.command("up")
@state_option
@click.option(
    "--nodes",
    type=click.Choice(NODES),
    default="real",
    show_default=True,
    help="real: one kubelet node with containerd and runc (root); kwok: fake nodes.",
)
def up(state_dir: Path, nodes: str) -> None:
    """Start the cluster in the background and print its kubeconfig."""
    info = ClusterInfo.load(state_dir)
    if info is not None and _running(info):
        raise CommandError(f"a cluster is already up: export KUBECONFIG={info.kubeconfig}")
    shutil.rmtree(state_dir, ignore_errors=True)
    click.echo(f"starting the control plane in {state_dir} ...", err=True)
    try:
        info = LocalCluster(state_dir, detached=True, nodes=nodes).start()
    except (ClusterError, BinariesError) as error:
        first, *excerpt = str(error).splitlines()
        if excerpt:  # the failing component's log, then the one-line error naming it
            click.echo("\n".join(excerpt), err=True)
        raise CommandError(first.rstrip(":")) from None
    click.echo(f"cluster up; logs in {state_dir / 'logs'}", err=True)
    click.echo(f"export KUBECONFIG={info.kubeconfig}")


@cluster_group.command("down")
@state_option
def down(state_dir: Path) -> None:
    """Stop every process of the cluster and delete its state."""
    info = ClusterInfo.load(state_dir)
    if info is None:
        click.echo("no cluster is up", err=True)
        return
    # The node's reaper first: it stops the node's programs and sweeps what they made.
    for name, pid in reversed(list(info.pids.items())):
        if _ours(info, pid):
            stop_process(pid, grace=REAPER_GRACE if name == "node-reaper" else 10)
    shutil.rmtree(state_dir, ignore_errors=True)
    click.echo("cluster stopped", err=True)


@cluster_group.command("status")
@state_option
def status(state_dir: Path) -> None:
    """Which components run, and the kubeconfig."""
    info = ClusterInfo.load(state_dir)
    if info is None:
        raise CommandError("no cluster is up: run `gitstage dev cluster up`")
    for name, pid in info.pids.items():
        click.echo(f"{name:<24} pid {pid:<8} {'running' if _ours(info, pid) else 'stopped'}")
    click.echo(f"export KUBECONFIG={info.kubeconfig}")


def _ours(info: ClusterInfo, pid: int) -> bool:
    """Alive and still one of the cluster's processes (pids get reused after a reboot): runs one
    of its binaries, or names its state directory (containerd, the node's reaper)."""
    if not alive(pid):
        return False
    if not info.bin_dir or runs_from(pid, Path(info.bin_dir)):
        return True
    return names_path(pid, Path(info.state_dir))


def _running(info: ClusterInfo) -> bool:
    return any(_ours(info, pid) for pid in info.pids.values())


@dev_group.command("demo")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE.parent / "demo",
    show_default=True,
    help="Where the demo's cluster keeps its state and logs (operator.log too).",
)
def demo(state_dir: Path) -> None:
    """Start the local control plane, serve a demo registry, run the operator, and show a
    rollout, a second rollout and a rollback driven by pushed GTO tags."""
    from gitstage.dev.demo import DemoError, run_demo

    shutil.rmtree(state_dir, ignore_errors=True)
    try:
        run_demo(state_dir, lambda line: click.echo(f"demo: {line}"))
    except (DemoError, ClusterError, BinariesError) as error:
        raise CommandError(f"{str(error).splitlines()[0]} (logs in {state_dir / 'logs'})") from None

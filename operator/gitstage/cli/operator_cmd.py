"""`gitstage operator` runs the kopf operator; `gitstage crds` prints or writes the CRD."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gitstage.operator.settings import SCANNING_ENV
from gitstage.resources.crd import render_crd_yaml

CRD_FILE = "modelregistries.gitstage.dev.yaml"


@click.command("operator")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable). Default: all namespaces.",
)
@click.option(
    "--liveness",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Liveness endpoint URL (empty to disable).",
)
@click.option(
    "--peering/--standalone",
    default=False,
    show_default=True,
    help="Use kopf peering (several replicas) or run standalone.",
)
@click.option(
    "--scan/--no-scan",
    default=True,
    show_default=True,
    help="Watch CRDs (and namespaces) cluster-wide to notice a CRD installed later; "
    "--no-scan needs no cluster-scoped access (use with -n and namespaced RBAC).",
)
@click.option("--verbose", is_flag=True, help="Debug logging.")
@click.option(
    "--log-format",
    type=click.Choice(["plain", "full", "json"]),
    default="plain",
    show_default=True,
    help="Log line format; json writes one JSON object per line.",
)
def operator_command(
    namespaces: tuple[str, ...],
    liveness: str,
    peering: bool,
    scan: bool,
    verbose: bool,
    log_format: str,
) -> None:
    """Run the operator against the current kubeconfig (or the in-cluster account)."""
    import kopf.cli

    # The handlers run in this process and read their settings from the environment.
    os.environ[SCANNING_ENV] = "1" if scan else "0"
    args = kopf_arguments(namespaces, liveness, peering, verbose, log_format)
    kopf.cli.main(args=args, prog_name="gitstage operator")


def kopf_arguments(
    namespaces: tuple[str, ...], liveness: str, peering: bool, verbose: bool, log_format: str
) -> list[str]:
    """The `kopf run` command line that `gitstage operator` stands for."""
    args = ["run", "-m", "gitstage.operator.handlers", f"--log-format={log_format}"]
    args += [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
    if liveness:
        args.append(f"--liveness={liveness}")
    if not peering:
        args.append("--standalone")
    if verbose:
        args.append("--verbose")
    return args


@click.command("crds")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Write {CRD_FILE} there instead of printing it.",
)
def crds_command(output_dir: Path | None) -> None:
    """The ModelRegistry CRD, generated from the pydantic models."""
    text = render_crd_yaml()
    if output_dir is None:
        click.echo(text, nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / CRD_FILE).write_text(text)
    click.echo(f"wrote {output_dir / CRD_FILE}")

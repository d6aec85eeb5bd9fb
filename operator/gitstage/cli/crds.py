"""`gitstage crds`: prints or writes the ModelRegistry CRD, generated from the pydantic models."""

from __future__ import annotations

from pathlib import Path

import click

from gitstage.cli.flags import examples
from gitstage.resources.crd import render_crd_yaml

CRD_FILE = "modelregistries.gitstage.dev.yaml"


@click.command(
    "crds",
    epilog=examples(
        "gitstage crds | kubectl apply --server-side -f -",
        "gitstage crds -o crds/",
    ),
)
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

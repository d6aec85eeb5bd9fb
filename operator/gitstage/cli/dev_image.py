"""`gitstage dev image build|pause`: the images a real node runs, built here, for people."""

from __future__ import annotations

from collections.abc import Callable

import click

from gitstage.cli.errors import CommandError
from gitstage.dev.images import BuiltImage, ImageError, gitstage_image, pause_image


@click.group("image")
def image_group() -> None:
    """Container images for a real node, built here with buildah and mmdebstrap (root), cached
    in ~/.cache/gitstage/images by a hash of their inputs."""


@image_group.command("build")
def image_build() -> None:
    """Build (or reuse) the image from this checkout's Dockerfile; print its reference and its
    docker archive (for `ctr -n k8s.io images import`)."""
    _print(gitstage_image)


@image_group.command("pause")
def image_pause() -> None:
    """Build (or reuse) the pod sandbox image; print its reference and its docker archive."""
    _print(pause_image)


def _print(build: Callable[[], BuiltImage]) -> None:
    try:
        image = build()
    except ImageError as error:
        raise CommandError(str(error)) from None
    click.echo(f"{image.reference} {image.archive}")

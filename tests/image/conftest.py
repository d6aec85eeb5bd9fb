"""The image built from this checkout (or reused from the cache), and its root filesystem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitstage.dev.images import (
    BuiltImage,
    ImageConfig,
    gitstage_image,
    image_config,
    mounted_rootfs,
)


@pytest.fixture(scope="session")
def image() -> BuiltImage:
    return gitstage_image()


@pytest.fixture(scope="session")
def config(image: BuiltImage) -> ImageConfig:
    return image_config(image)


@pytest.fixture(scope="session")
def rootfs(image: BuiltImage) -> Iterator[Path]:
    with mounted_rootfs(image) as path:
        yield path

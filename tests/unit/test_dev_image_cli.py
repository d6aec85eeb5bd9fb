"""`gitstage dev image build|pause`: the reference and the archive on one line, or a one-line
error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitstage.cli import dev_image
from gitstage.cli.main import cli
from gitstage.dev.images import BuiltImage, ImageError


def test_the_cli_prints_the_reference_and_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    built = BuiltImage("localhost/gitstage:abc", Path("/cache/gitstage-abc.tar"))
    monkeypatch.setattr(dev_image, "gitstage_image", lambda: built)
    result = CliRunner().invoke(cli, ["dev", "image", "build"])
    assert (result.exit_code, result.stdout) == (
        0,
        "localhost/gitstage:abc /cache/gitstage-abc.tar\n",
    )


def test_the_cli_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> BuiltImage:
        raise ImageError("buildah bud failed with exit code 1: a | b (log: /x.log)")

    monkeypatch.setattr(dev_image, "pause_image", broken)
    result = CliRunner().invoke(cli, ["dev", "image", "pause"])
    assert result.exit_code == 1
    assert result.stderr == (
        "gitstage: error: buildah bud failed with exit code 1: a | b (log: /x.log)\n"
    )

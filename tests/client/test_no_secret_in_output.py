"""A repository URL with a password in it (`-r https://user:SECRET@host/...`) never shows the
password, whatever the command and however it fails."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli

pytestmark = pytest.mark.fault  # the hardening issue's fault-injection suite

SECRET = "TopSecret-9f2c"
URL = f"http://reader:{SECRET}@127.0.0.1:9/registry.git"  # port 9: nothing listens


@pytest.mark.parametrize(
    "command",
    [
        ["show"],
        ["show", "--json"],
        ["history"],
        ["describe", "churn"],
        ["check"],
        ["check-ref", "churn@v1.0.0"],
        ["stages"],
        ["latest", "churn"],
        ["which", "churn", "prod"],
        ["fetch", "churn"],
    ],
)
def test_the_password_of_a_url_is_never_printed(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "-r", URL])
    assert result.exit_code != 0
    assert SECRET not in result.stdout + result.stderr
    assert result.stderr.startswith("gitstage: error: ")
    assert len(result.stderr.strip().splitlines()) == 1

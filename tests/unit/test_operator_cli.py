"""`gitstage operator`: the kopf command line it stands for, and its settings handoff."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli
from gitstage.cli.operator import kopf_arguments
from gitstage.operator.settings import SCANNING_ENV, OperatorSettings


def test_all_namespaces_standalone_by_default() -> None:
    args = kopf_arguments((), "http://0.0.0.0:8080/healthz", False, False, "json")
    assert args == [
        "run",
        "-m",
        "gitstage.operator.handlers",
        "--log-format=json",
        "--all-namespaces",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--standalone",
    ]


def test_watched_namespaces_replace_all_namespaces() -> None:
    args = kopf_arguments(("ml", "ml-staging"), "", True, True, "plain")
    assert "--all-namespaces" not in args
    assert [a for a in args if a.startswith("--namespace=")] == [
        "--namespace=ml",
        "--namespace=ml-staging",
    ]
    assert "--standalone" not in args
    assert "--verbose" in args
    assert not [a for a in args if a.startswith("--liveness")]


def test_an_unknown_log_format_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["operator", "--log-format=xml"])
    assert result.exit_code == 2
    assert "'xml' is not one of 'plain', 'full', 'json'" in result.output


def test_help_documents_json_logs_and_scanning() -> None:
    result = CliRunner().invoke(cli, ["operator", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help is wrapped to the terminal
    assert "json writes one JSON object per line" in text
    assert "--scan / --no-scan" in text


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("1", True), ("0", False)])
def test_scanning_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None, expected: bool
) -> None:
    monkeypatch.setenv("GITSTAGE_CACHE_DIR", str(tmp_path))
    if value is None:
        monkeypatch.delenv(SCANNING_ENV, raising=False)
    else:
        monkeypatch.setenv(SCANNING_ENV, value)
    assert OperatorSettings.from_env().scanning is expected

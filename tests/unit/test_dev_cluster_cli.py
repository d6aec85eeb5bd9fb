"""`gitstage dev cluster` without a cluster or without binaries: one-line errors, no traceback;
and the log excerpt that cluster errors carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli
from gitstage.dev.logs import log_excerpt


def test_up_without_binaries_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("GITSTAGE_K8S_BIN", str(empty))
    result = CliRunner().invoke(cli, ["dev", "cluster", "up", "--state-dir", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"gitstage: error: GITSTAGE_K8S_BIN={empty} lacks etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok"
    )
    assert "Traceback" not in result.stderr


def test_status_and_down_without_a_cluster(tmp_path: Path) -> None:
    state = str(tmp_path / "none")
    status = CliRunner().invoke(cli, ["dev", "cluster", "status", "--state-dir", state])
    assert status.exit_code == 1
    assert status.stderr == "gitstage: error: no cluster is up: run `gitstage dev cluster up`\n"
    down = CliRunner().invoke(cli, ["dev", "cluster", "down", "--state-dir", state])
    assert down.exit_code == 0
    assert down.stderr == "no cluster is up\n"


def test_an_error_that_scrolled_out_of_the_tail_is_kept() -> None:
    log = ["flag provided but not defined: -x", "Usage:", *(f"  option {i}" for i in range(40))]
    excerpt = log_excerpt(log, last=8)
    assert excerpt == ["flag provided but not defined: -x", "...", *log[-8:]]


def test_a_short_log_is_shown_whole() -> None:
    log = ["E1122 12:00:00.000000 1 run.go:72] command failed", "bye"]
    assert log_excerpt(log) == log

"""Credentials stay with their origin: a repository URL that redirects to another host gets the
fetch refused by default, and, when redirects are allowed, the other host receives neither the
preemptive Authorization header nor an askpass answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from gitstage.dev.git_server import BasicAuth
from tests.fetch.conftest import Registry
from tests.support.redirect_server import RecordingServer, RedirectingServer

pytestmark = pytest.mark.fault  # the hardening issue's fault-injection suite

SECRET = "pa55-W0rd-for-A-only"
CREDENTIALS = {"GITSTAGE_GIT_USERNAME": "alice", "GITSTAGE_GIT_PASSWORD": SECRET}


def fetch_from(url: str, dest: Path, extra: dict[str, str] | None = None) -> Result:
    args = ["fetch", "--repo", url, "--rev", "main", "--path", "model.bin", "--dest", str(dest)]
    env: dict[str, str | None] = {**CREDENTIALS, **(extra or {})}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_a_redirect_to_another_host_is_refused_and_sends_nothing_there(tmp_path: Path) -> None:
    with RecordingServer() as elsewhere, RedirectingServer(elsewhere.origin) as origin:
        result = fetch_from(f"{origin.origin}/registry.git", tmp_path / "d")
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("gitstage: error: ")
    assert "redirect" in line.lower()
    assert SECRET not in result.stderr
    assert elsewhere.requests == []


def test_an_allowed_redirect_still_keeps_the_credentials_at_home(tmp_path: Path) -> None:
    allowed = {"GITSTAGE_GIT_FOLLOW_REDIRECTS": "1"}
    with RecordingServer() as elsewhere, RedirectingServer(elsewhere.origin) as origin:
        result = fetch_from(f"{origin.origin}/registry.git", tmp_path / "d", allowed)
    assert result.exit_code != 0
    assert elsewhere.requests  # followed, as asked
    assert elsewhere.authorizations == [None] * len(elsewhere.requests)
    assert SECRET not in result.stderr


def test_a_dvc_remote_redirecting_to_another_host_gets_no_credentials(
    registry: Registry, tmp_path: Path
) -> None:
    """The HTTP DVC remote of `http_commit` answers 302 to another origin: refused by default;
    followed when allowed, without the Authorization header."""
    from tests.fetch.test_fetch import fetch_http

    dvc_credentials = {
        "GITSTAGE_DVC_USERNAME": "dvc",
        "GITSTAGE_DVC_PASSWORD": SECRET,
        "GITSTAGE_DVC_ORIGIN": registry.files.url,
    }
    with RecordingServer() as elsewhere:
        registry.files.redirect_to = elsewhere.origin
        try:
            refused = fetch_http(registry, "model", tmp_path / "a", env=dvc_credentials)
            allowed = {**dvc_credentials, "GITSTAGE_DVC_FOLLOW_REDIRECTS": "1"}
            followed = fetch_http(registry, "model", tmp_path / "b", env=allowed)
        finally:
            registry.files.redirect_to = None
    assert refused.exit_code != 0
    (line,) = refused.stderr.splitlines()
    assert "redirected to another host; not followed" in line
    assert followed.exit_code != 0  # the other host answers 401 to a request without them
    assert elsewhere.requests
    assert elsewhere.authorizations == [None] * len(elsewhere.requests)
    assert SECRET not in refused.stderr + followed.stderr


def test_dvc_credentials_go_only_to_the_origin_they_are_for(
    registry: Registry, tmp_path: Path
) -> None:
    """The remote of `http_commit` is `registry.files`, made to require these credentials:
    bound to its origin they open it; bound to another origin they are not sent at all; with no
    origin they are refused before anything is sent."""
    from tests.fetch.test_fetch import fetch_http

    credentials = {"GITSTAGE_DVC_USERNAME": "dvc", "GITSTAGE_DVC_PASSWORD": SECRET}
    registry.files.auth = BasicAuth("dvc", SECRET)
    try:
        right = {**credentials, "GITSTAGE_DVC_ORIGIN": registry.files.url}
        opened = fetch_http(registry, "model", tmp_path / "a", env=right)
        wrong = {**credentials, "GITSTAGE_DVC_ORIGIN": "http://127.0.0.1:9"}
        unsent = fetch_http(registry, "model", tmp_path / "b", env=wrong)
        unbound = fetch_http(registry, "model", tmp_path / "c", env=credentials)
    finally:
        registry.files.auth = None
    assert opened.exit_code == 0, opened.stderr
    assert unsent.exit_code != 0
    assert "refused access (HTTP 401)" in unsent.stderr
    assert unbound.exit_code == 2
    (line,) = unbound.stderr.splitlines()
    assert "GITSTAGE_DVC_PASSWORD is set without GITSTAGE_DVC_ORIGIN" in line
    assert SECRET not in opened.stderr + unsent.stderr + unbound.stderr

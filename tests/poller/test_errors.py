"""Failures become typed one-line errors; secrets reach no message, log record or command line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror.errors import (
    AuthenticationFailed,
    BranchNotFound,
    InvalidSource,
    MirrorError,
    OperationTimedOut,
    RepositoryNotFound,
    SourceUnreachable,
)
from gitstage.adapters.mirror.remote_mirror import RemoteMirror, Timeouts
from tests.poller.conftest import PASSWORD, USER, Remote
from tests.support.ports import reserve_port

WRONG = "wrong-Kx9-secret-0815"


def failure(mirror: RemoteMirror) -> MirrorError:
    with pytest.raises(MirrorError) as caught:
        mirror.sync()
    return caught.value


def assert_one_clean_line(error: MirrorError, *secrets: str) -> None:
    text = str(error)
    assert text
    assert "\n" not in text
    for secret in secrets:
        assert secret not in text
    assert error.__cause__ is None  # no chained CalledProcessError carrying argv or env


def test_wrong_password_is_a_permanent_typed_error_and_never_shown(
    remote: Remote,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trace = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))  # git logs every command line it runs
    caplog.set_level(logging.DEBUG)
    credentials = GitCredentials(USER, WRONG)
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    error = failure(mirror)
    assert isinstance(error, AuthenticationFailed)
    assert error.permanent
    assert error.reason == "AuthenticationFailed"
    assert remote.server.stats.denied >= 1
    assert "git ls-remote" in trace.read_text()  # the trace works...
    # ...and neither the password nor its Basic header form is in a message, a log, a command
    # line or a cache file.
    for secret in (WRONG, str(credentials.basic_token)):
        assert_one_clean_line(error, secret)
        assert secret not in caplog.text
        assert secret not in trace.read_text()
        for path in (tmp_path / "cache").rglob("*"):
            assert secret not in path.name
            if path.is_file():
                assert secret.encode() not in path.read_bytes()


def test_missing_credentials_are_an_authentication_error(remote: Remote, tmp_path: Path) -> None:
    error = failure(RemoteMirror(remote.url, None, tmp_path / "cache"))
    assert isinstance(error, AuthenticationFailed)
    assert_one_clean_line(error)


def test_userinfo_in_the_url_is_used_and_never_shown(
    remote: Remote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with_userinfo = remote.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    mirror = RemoteMirror(with_userinfo, None, tmp_path / "cache")
    assert mirror.sync().changed
    assert PASSWORD not in mirror.url
    assert PASSWORD not in (mirror.path / "config").read_text()
    wrong = RemoteMirror(with_userinfo.replace(PASSWORD, WRONG), None, tmp_path / "cache")
    error = failure(wrong)
    assert isinstance(error, AuthenticationFailed)
    assert_one_clean_line(error, WRONG, PASSWORD)
    assert PASSWORD not in caplog.text
    assert WRONG not in caplog.text


def test_unreachable_server_is_a_transient_typed_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{reserve_port()}/registry.git"
    mirror = RemoteMirror(url, GitCredentials(USER, PASSWORD), tmp_path / "cache")
    error = failure(mirror)
    assert isinstance(error, SourceUnreachable)
    assert not error.permanent
    assert error.reason == "SourceUnavailable"
    assert_one_clean_line(error, PASSWORD)
    assert mirror.counters.errors == 1


def test_missing_repository_and_missing_branch(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    missing_repo = RemoteMirror(remote.server.url("nope.git"), credentials, tmp_path / "c")
    assert isinstance(failure(missing_repo), RepositoryNotFound)
    missing_branch = RemoteMirror(remote.url, credentials, tmp_path / "c", "release")
    error = failure(missing_branch)
    assert isinstance(error, BranchNotFound)
    assert "'release'" in str(error)
    assert_one_clean_line(error, PASSWORD)
    assert missing_branch.counters.fetches == 0


def test_a_stalled_server_times_out_per_operation(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(
        remote.url, credentials, tmp_path / "cache", timeouts=Timeouts(ls_remote=0.5)
    )
    remote.server.hold()
    try:
        error = failure(mirror)
        assert remote.server.waiting.is_set()  # the request was held, not refused
    finally:
        remote.server.release()
    assert isinstance(error, OperationTimedOut)
    assert error.reason == "SourceUnavailable"
    assert "timed out after 0.5s" in str(error)
    assert_one_clean_line(error, PASSWORD)
    assert mirror.sync().changed  # the same mirror recovers


@pytest.mark.parametrize(
    ("url", "branch"),
    [("-uhttp://x", "main"), ("", "main"), ("http://h/r.git", "bad..name"), ("http://h/r", "")],
)
def test_invalid_sources_are_refused_before_git_runs(url: str, branch: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidSource):
        RemoteMirror(url, None, tmp_path / "cache", branch)
    assert not (tmp_path / "cache").exists()


def test_a_source_redirecting_to_another_host_is_refused_without_sending_it_anything(
    tmp_path: Path,
) -> None:
    from tests.support.redirect_server import RecordingServer, RedirectingServer

    credentials = GitCredentials(USER, PASSWORD)
    with RecordingServer() as elsewhere, RedirectingServer(elsewhere.origin) as origin:
        mirror = RemoteMirror(f"{origin.origin}/registry.git", credentials, tmp_path / "cache")
        error = failure(mirror)
    assert isinstance(error, SourceUnreachable)
    assert "redirected to another URL" in str(error)
    assert_one_clean_line(error, PASSWORD)
    assert elsewhere.requests == []

"""The operator's mirror behind a corporate network: the git server over HTTPS with a CA of the
test's own (GITSTAGE_CA_BUNDLE in the operator's environment), and through an HTTPS_PROXY."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror.errors import SourceUnreachable
from gitstage.adapters.mirror.remote_mirror import RemoteMirror
from tests.poller.conftest import Remote
from tests.support.tls import ConnectProxy, LoopbackCa, TlsFront

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def ca(tmp_path: Path) -> LoopbackCa:
    return LoopbackCa.create(tmp_path / "ca")


@pytest.fixture
def front(remote: Remote, ca: LoopbackCa, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsFront]:
    for name in (*PROXY_VARIABLES, "GITSTAGE_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with TlsFront(remote.server.port, ca) as tls:
        yield tls


@pytest.fixture
def trusted(front: TlsFront, ca: LoopbackCa, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's environment names the CA bundle (after `front` cleared it)."""
    monkeypatch.setenv("GITSTAGE_CA_BUNDLE", str(ca.bundle))


def https_url(front: TlsFront, remote: Remote) -> str:
    return f"{front.url}/{remote.clone.bare.name}"


@pytest.mark.usefixtures("trusted")
def test_the_mirror_syncs_over_https_trusting_the_ca_bundle(
    remote: Remote, credentials: GitCredentials, front: TlsFront, tmp_path: Path
) -> None:
    mirror = RemoteMirror(https_url(front, remote), credentials, tmp_path / "cache")
    result = mirror.sync()
    assert result.head == remote.clone.commits["two"]
    assert front.connections >= 2  # the ref listing and the fetch


def test_without_the_bundle_the_certificate_is_refused(
    remote: Remote, credentials: GitCredentials, front: TlsFront, tmp_path: Path
) -> None:
    mirror = RemoteMirror(https_url(front, remote), credentials, tmp_path / "cache")
    with pytest.raises(SourceUnreachable) as refused:
        mirror.sync()
    assert "certificate" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert remote.server.stats.requests == 0  # nothing reached the server behind TLS


@pytest.mark.usefixtures("trusted")
def test_the_mirror_goes_through_the_https_proxy(
    remote: Remote,
    credentials: GitCredentials,
    front: TlsFront,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        mirror = RemoteMirror(https_url(front, remote), credentials, tmp_path / "cache")
        assert mirror.sync().head == remote.clone.commits["two"]
    assert proxy.tunnels
    assert set(proxy.tunnels) == {f"127.0.0.1:{front.port}"}

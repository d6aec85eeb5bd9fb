"""`gitstage fetch` behind a corporate network: git, a DVC HTTP remote and an S3 endpoint served
over HTTPS by a CA of the test's own (GITSTAGE_CA_BUNDLE), and through an HTTPS_PROXY."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from gitstage.dev.git_server import GitHttpServer
from tests.support.dvc_project import DvcProject
from tests.support.http_files import FileHttpServer
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server
from tests.support.tls import ConnectProxy, LoopbackCa, TlsFront

pytest.importorskip("boto3", reason="the s3 extra is part of the test dependencies")

# Whatever the machine sets, these would change which CAs or proxy a client uses.
NO_TRANSPORT_ENV: dict[str, str | None] = dict.fromkeys(
    (
        "GITSTAGE_CA_BUNDLE",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    )
)


@dataclass
class Served:
    ca: LoopbackCa
    git: TlsFront
    files: TlsFront
    s3: TlsFront
    weights: bytes
    http_commit: str  # DVC remote: https://... (the files front)
    s3_commit: str  # DVC remote: s3://models/store at the s3 front

    @property
    def url(self) -> str:
        return f"{self.git.url}/registry.git"


def _port(url: str) -> int:
    return int(urlsplit(url).port or 0)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("tls")
    ca = LoopbackCa.create(base / "ca")
    remote, repositories = base / "remote", base / "served"
    repositories.mkdir()
    weights = random.Random(11).randbytes(120_000)
    project = DvcProject.with_weights(base / "work", remote, weights)
    with (
        FileHttpServer(remote) as files,
        S3Server() as s3,
        GitHttpServer(repositories) as git,
        TlsFront(_port(files.url), ca) as files_front,
        TlsFront(_port(s3.url), ca) as s3_front,
        TlsFront(git.port, ca) as git_front,
    ):
        project.set_remote("store", files_front.url)
        http_commit = project.commit("the DVC remote over HTTPS")
        s3.create_bucket("models")
        s3.upload_tree(remote, "models", "store")
        project.set_remote("store", "s3://models/store")
        project.dvc("remote", "modify", "store", "endpointurl", s3_front.url)
        s3_commit = project.commit("the DVC remote on S3 over HTTPS")
        project.bare_copy(repositories / "registry.git")
        yield Served(ca, git_front, files_front, s3_front, weights, http_commit, s3_commit)


def remote(served: Served, kind: str) -> tuple[str, TlsFront]:
    """The commit whose DVC remote is of `kind` (http or s3), and that remote's HTTPS front."""
    if kind == "http":
        return served.http_commit, served.files
    return served.s3_commit, served.s3


def fetch(served: Served, rev: str, dest: Path, **env: str) -> Result:
    args = ["fetch", "--repo", served.url, "--rev", rev, "--artifact", "weights"]
    environment: dict[str, str | None] = {**NO_TRANSPORT_ENV, **env}
    if rev == served.s3_commit:
        credentials = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        environment |= {**credentials, "GITSTAGE_DVC_ORIGIN": served.s3.url}
    return CliRunner().invoke(
        cli, [*args, "--dest", str(dest)], env=environment, catch_exceptions=False
    )


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_git_and_the_dvc_store_trust_the_ca_bundle(
    served: Served, tmp_path: Path, kind: str
) -> None:
    rev, store = remote(served, kind)
    git_before, store_before = served.git.connections, store.connections
    result = fetch(served, rev, tmp_path / "d", GITSTAGE_CA_BUNDLE=str(served.ca.bundle))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "d" / "weights.bin").read_bytes() == served.weights
    assert served.git.connections > git_before
    assert store.connections > store_before


def test_without_the_bundle_git_refuses_the_certificate(served: Served, tmp_path: Path) -> None:
    result = fetch(served, served.http_commit, tmp_path / "d")
    assert result.exit_code == 5, result.stderr  # a transport failure
    (line,) = result.stderr.splitlines()
    assert "certificate" in line
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_without_the_bundle_the_dvc_store_refuses_the_certificate(
    served: Served, tmp_path: Path, kind: str
) -> None:
    """git told to trust the CA its own way (GIT_SSL_CAINFO): the DVC transfer still needs
    GITSTAGE_CA_BUNDLE, and fails in one line without it."""
    rev, _store = remote(served, kind)
    result = fetch(served, rev, tmp_path / "d", GIT_SSL_CAINFO=str(served.ca.bundle))
    assert result.exit_code == 5, result.stderr
    (line,) = result.stderr.splitlines()
    assert "DVC remote" in line
    assert "CERTIFICATE_VERIFY_FAILED" in line or "certificate verify failed" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read: No such file or directory"),
        (b"not a certificate\n", "holds no usable PEM certificate"),
    ],
    ids=["missing", "not-pem"],
)
def test_an_unusable_bundle_is_a_one_line_usage_error(
    served: Served, tmp_path: Path, content: bytes | None, message: str
) -> None:
    bundle = tmp_path / "bundle.pem"
    if content is not None:
        bundle.write_bytes(content)
    result = fetch(served, served.http_commit, tmp_path / "d", GITSTAGE_CA_BUNDLE=str(bundle))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert f"GITSTAGE_CA_BUNDLE={bundle}" in line
    assert message in line


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_git_and_the_dvc_store_go_through_the_https_proxy(
    served: Served, tmp_path: Path, kind: str
) -> None:
    rev, store = remote(served, kind)
    bundle = str(served.ca.bundle)
    with ConnectProxy() as proxy:
        result = fetch(
            served, rev, tmp_path / "d", GITSTAGE_CA_BUNDLE=bundle, HTTPS_PROXY=proxy.url
        )
        assert result.exit_code == 0, result.stderr
        assert f"127.0.0.1:{served.git.port}" in proxy.tunnels
        assert f"127.0.0.1:{store.port}" in proxy.tunnels
        # NO_PROXY names the servers: nothing goes through the proxy.
        tunnels = len(proxy.tunnels)
        bypass = {"GITSTAGE_CA_BUNDLE": bundle, "HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}
        result = fetch(served, rev, tmp_path / "e", **bypass)
        assert result.exit_code == 0, result.stderr
        assert len(proxy.tunnels) == tunnels
    assert (tmp_path / "e" / "weights.bin").read_bytes() == served.weights

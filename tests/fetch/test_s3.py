"""DVC artifacts on an S3-compatible remote (moto's server on loopback), named the way DVC users
write it: `url = s3://bucket/prefix` with `endpointurl` in `.dvc/config`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from tests.support.dvc_project import DvcProject
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server

pytest.importorskip("boto3", reason="the s3 extra is part of the test dependencies")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


@dataclass
class S3Registry:
    project: DvcProject
    server: S3Server
    weights: bytes
    good: str  # the remote names the server by endpointurl
    by_environment: str  # no endpointurl: AWS_ENDPOINT_URL says where
    missing: str  # a .dvc file whose object was never pushed
    attacker: S3Server
    moved: str  # endpointurl pointed at the attacker's server by whoever could push


def write_remote(project: DvcProject, url: str) -> None:
    """`.dvc/config` with no endpointurl (what `dvc remote add -d -f` writes; no CLI start-up)."""
    config = "[core]\n    remote = store\n    analytics = false\n['remote \"store\"']\n"
    project.write(".dvc/config", config + f"    url = {url}\n")


@pytest.fixture(scope="module")
def s3_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Registry]:
    base = tmp_path_factory.mktemp("s3")
    local_remote = base / "remote"
    weights = random.Random(7).randbytes(150_000)
    with S3Server() as server, S3Server() as attacker:
        project = DvcProject.with_weights(base / "work", local_remote, weights)
        server.create_bucket("models")
        assert server.upload_tree(local_remote, "models", "dvcstore") == 1
        project.set_remote("store", "s3://models/dvcstore")
        project.dvc("remote", "modify", "store", "endpointurl", server.url)  # DVC's own syntax
        good = project.commit("the remote on S3")
        endpoint_config = (project.path / ".dvc" / "config").read_text()
        write_remote(project, "s3://models/dvcstore")
        by_environment = project.commit("the endpoint from the environment")
        project.write(".dvc/config", endpoint_config)
        project.write("models/weights.bin", b"never pushed")
        project.dvc("add", "-q", "models/weights.bin")
        missing = project.commit("an object that was never pushed")
        project.dvc("remote", "modify", "store", "endpointurl", attacker.url)
        moved = project.commit("the endpoint moved to another host")
        yield S3Registry(project, server, weights, good, by_environment, missing, attacker, moved)


def fetch_s3(registry: S3Registry, rev: str, dest: Path, env: dict[str, str | None]) -> Result:
    args = ["fetch", "--repo", str(registry.project.path), "--rev", rev]
    args += ["--artifact", "weights", "--dest", str(dest)]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def bound_to(server: S3Server) -> dict[str, str | None]:
    """The keys, bound to `server`'s origin (the fetcher's Secret would hold the same)."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": None, "GITSTAGE_DVC_ORIGIN": server.url}


@pytest.mark.fault
def test_keys_never_sign_for_an_endpoint_a_commit_moved(
    s3_registry: S3Registry, tmp_path: Path
) -> None:
    before = s3_registry.attacker.stats.requests
    result = fetch_s3(s3_registry, s3_registry.moved, tmp_path / "d", bound_to(s3_registry.server))
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert f"names endpointurl {s3_registry.attacker.url}" in line
    assert "not bound to: set GITSTAGE_DVC_ORIGIN" in line
    assert s3_registry.attacker.stats.requests == before
    unbound: dict[str, str | None] = {**CREDENTIALS, "AWS_ENDPOINT_URL": None}
    result = fetch_s3(s3_registry, s3_registry.good, tmp_path / "e", unbound)
    assert "not bound to" in result.stderr  # keys without a binding go nowhere a commit names
    # Bound to the new host on purpose, the keys go there.
    moved = bound_to(s3_registry.attacker)
    fetch_s3(s3_registry, s3_registry.moved, tmp_path / "f", moved)
    assert s3_registry.attacker.stats.requests > before


def test_the_endpointurl_of_the_remote_is_used(s3_registry: S3Registry, tmp_path: Path) -> None:
    before = s3_registry.server.stats.requests
    env = bound_to(s3_registry.server)
    result = fetch_s3(s3_registry, s3_registry.good, tmp_path / "d", env)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "d" / "weights.bin").read_bytes() == s3_registry.weights
    assert s3_registry.server.stats.requests > before


def test_aws_endpoint_url_names_the_server_when_the_remote_does_not(
    s3_registry: S3Registry, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_registry.server.url}
    result = fetch_s3(s3_registry, s3_registry.by_environment, tmp_path / "d", env)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "d" / "weights.bin").read_bytes() == s3_registry.weights


def test_a_missing_object_is_one_line_without_the_secret(
    s3_registry: S3Registry, tmp_path: Path
) -> None:
    result = fetch_s3(
        s3_registry, s3_registry.missing, tmp_path / "d", bound_to(s3_registry.server)
    )
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("gitstage: error: object files/md5/")
    assert "is missing from DVC remote s3://models/dvcstore" in line
    assert SECRET_KEY not in result.stderr
    assert not (tmp_path / "d").exists()


def test_an_unreachable_endpoint_is_one_line(s3_registry: S3Registry, tmp_path: Path) -> None:
    env: dict[str, str | None] = {**CREDENTIALS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    env["AWS_MAX_ATTEMPTS"] = "1"
    result = fetch_s3(s3_registry, s3_registry.by_environment, tmp_path / "d", env)
    assert result.exit_code != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("gitstage: error: cannot reach DVC remote s3://models/dvcstore")
    assert SECRET_KEY not in result.stderr

"""--push to an authenticated loopback git server, and writing a remote URL without cloning it."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from tests.support.scratch import BASE_TIME, ScratchRepo, When

AUTH = BasicAuth("alice", "s3cret-Pa55")
BIG_BLOB = 4 * 1024 * 1024


@dataclass
class Served:
    server: GitHttpServer
    bare: Path
    local: ScratchRepo

    @property
    def url(self) -> str:
        return self.server.url("registry.git")

    @property
    def url_with_password(self) -> str:
        return self.url.replace("http://", f"http://{AUTH.username}:{AUTH.password}@")

    def server_tags(self) -> dict[str, pygit2.Tag]:
        repo = pygit2.Repository(str(self.bare))
        tags = {}
        for ref in repo.listall_references():
            if ref.startswith("refs/tags/"):
                obj = repo.get(repo.references[ref].target)
                assert isinstance(obj, pygit2.Tag)
                tags[ref[len("refs/tags/") :]] = obj
        return tags


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    local = ScratchRepo(tmp_path / "work")
    local.repo.config["user.name"] = "Reg Istrar"
    local.repo.config["user.email"] = "registrar@example.com"
    weights = random.Random(7).randbytes(BIG_BLOB).hex()[:BIG_BLOB]
    local.commit({"model.bin": weights}, When(1))
    local.commit(
        {".gto": "stages: [dev, prod]\n", "artifacts.yaml": "feat:\n  path: model.bin\n"},
        When(2),
    )
    bare = tmp_path / "server" / "registry.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(local.path), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    with GitHttpServer(bare.parent, auth=AUTH) as server:
        found = Served(server, bare, local)
        local.repo.remotes.create("origin", found.url)
        yield found


def gs(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--date", f"@{BASE_TIME + 50} +0000"], env=env)
    return result.exit_code, result.stdout, result.stderr


CREDENTIALS = {"GITSTAGE_GIT_USERNAME": AUTH.username, "GITSTAGE_GIT_PASSWORD": AUTH.password}


def test_push_sends_the_new_tags_and_deletes(served: Served) -> None:
    repo = str(served.local.path)
    code, out, err = gs("assign", "m", "--stage", "prod", "--push", "-r", repo, env=CREDENTIALS)
    assert code == 0, err
    assert out.splitlines() == [
        "Created git tag 'm@v0.0.1' that registers version",
        "Created git tag 'm#prod#1' that assigns stage to version 'v0.0.1'",
        "Successfully pushed git tag m@v0.0.1 on remote.",
        "Successfully pushed git tag m#prod#1 on remote.",
    ]
    tags = served.server_tags()
    assert set(tags) == {"m@v0.0.1", "m#prod#1"}
    assert tags["m#prod#1"].tagger.name == "Reg Istrar"
    assert AUTH.password not in out + err
    code, out, err = gs("deprecate", "m", "--delete", "--push", "-r", repo, env=CREDENTIALS)
    assert code == 0, err
    assert served.server_tags() == {}
    assert served.local.repo.listall_references() == ["refs/heads/main"]


@pytest.mark.fault
def test_a_failed_push_is_one_line_without_the_password(served: Served) -> None:
    wrong = {**CREDENTIALS, "GITSTAGE_GIT_PASSWORD": "not-it-" + AUTH.password}
    code, out, err = gs("register", "m", "--push", "-r", str(served.local.path), env=wrong)
    assert code == 1
    assert err.startswith("gitstage: error: git push to origin failed:")
    assert len(err.strip().splitlines()) == 1
    assert AUTH.password not in out + err
    assert served.server_tags() == {}


def test_a_tag_that_someone_else_pushed_first_is_rejected(served: Served) -> None:
    other = pygit2.Repository(str(served.bare))
    head = other.revparse_single("HEAD")
    who = pygit2.Signature("Someone", "else@example.com", BASE_TIME + 10, 0)
    other.create_tag("m@v0.0.1", head.id, head.type, who, "first")
    code, _, err = gs("register", "m", "--push", "-r", str(served.local.path), env=CREDENTIALS)
    assert code == 1
    assert "git push to origin failed: ! [rejected]" in err
    assert "(already exists)" in err
    assert served.server_tags()["m@v0.0.1"].tagger.name == "Someone"


def test_a_remote_url_is_written_without_fetching_blobs(served: Served) -> None:
    code, out, err = gs("assign", "m", "--stage", "dev", "-r", served.url_with_password)
    assert code == 0, err
    assert "Successfully pushed git tag m#dev#1 on remote." in out
    assert AUTH.password not in out + err
    tags = served.server_tags()
    assert set(tags) == {"m@v0.0.1", "m#dev#1"}
    head = pygit2.Repository(str(served.bare)).revparse_single("HEAD").id
    assert tags["m#dev#1"].target == head
    # The 4 MiB of weights at the first commit never crossed the wire.
    assert served.server.stats.bytes_sent < BIG_BLOB // 8


def test_a_remote_url_reads_gto_and_artifacts_yaml_of_the_default_branch(served: Served) -> None:
    code, _, err = gs("assign", "m", "--stage", "qa", "-r", served.url_with_password)
    progress, error = err.strip().splitlines()
    assert progress.startswith(f"Fetching tags and the default branch of {served.url}")
    assert (code, error) == (1, "gitstage: error: Allowed stages are: '['dev', 'prod']'")
    # `feat` is known only from artifacts.yaml at HEAD, as in GTO's clone.
    code, _, err = gs("deprecate", "feat", "-r", served.url_with_password)
    assert code == 0, err
    assert "feat@deprecated" in served.server_tags()
    assert served.server.stats.bytes_sent < BIG_BLOB // 8


def test_a_remote_url_with_credentials_from_the_environment(served: Served) -> None:
    code, _, err = gs("register", "m", "-r", served.url, env=CREDENTIALS)
    assert code == 0, err
    assert set(served.server_tags()) == {"m@v0.0.1"}
    code, _, err = gs("register", "n", "-r", served.url)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith(f"gitstage: error: cannot read {served.url}:")


REFUSING_HOOK = """#!/bin/sh
# Refuses every push while the marker exists (a remote rule, a freeze window).
if [ -e "$GIT_DIR/frozen" ]; then
  echo "prod is frozen until Monday" >&2
  exit 1
fi
"""


@pytest.mark.fault
def test_a_refused_push_lands_nothing_undoes_the_local_tags_and_a_retry_succeeds(
    served: Served,
) -> None:
    hook = served.bare / "hooks" / "pre-receive"
    hook.write_text(REFUSING_HOOK)
    hook.chmod(0o755)
    (served.bare / "frozen").touch()
    repo = str(served.local.path)
    code, _, err = gs("assign", "m", "--stage", "prod", "--push", "-r", repo, env=CREDENTIALS)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("gitstage: error: git push to origin failed:")
    assert "(pre-receive hook declined): prod is frozen until Monday" in line  # the remote's why
    assert line.endswith("nothing was pushed, the local tags are undone")
    assert served.server_tags() == {}  # atomic: not the registration without the assignment
    assert served.local.repo.listall_references() == ["refs/heads/main"]
    (served.bare / "frozen").unlink()
    code, _, err = gs("assign", "m", "--stage", "prod", "--push", "-r", repo, env=CREDENTIALS)
    assert code == 0, err
    assert set(served.server_tags()) == {"m@v0.0.1", "m#prod#1"}


@pytest.mark.fault
def test_a_refused_deletion_puts_the_local_tags_back(served: Served) -> None:
    repo = str(served.local.path)
    code, _, err = gs("assign", "m", "--stage", "prod", "--push", "-r", repo, env=CREDENTIALS)
    assert code == 0, err
    before = {
        ref: served.local.repo.references[ref].target
        for ref in served.local.repo.listall_references()
    }
    hook = served.bare / "hooks" / "pre-receive"
    hook.write_text(REFUSING_HOOK)
    hook.chmod(0o755)
    (served.bare / "frozen").touch()
    code, _, err = gs("deprecate", "m", "--delete", "--push", "-r", repo, env=CREDENTIALS)
    assert code == 1, err
    assert set(served.server_tags()) == {"m@v0.0.1", "m#prod#1"}
    after = {
        ref: served.local.repo.references[ref].target
        for ref in served.local.repo.listall_references()
    }
    assert after == before

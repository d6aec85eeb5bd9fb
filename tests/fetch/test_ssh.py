"""SSH sources: a private key and known_hosts from a Secret, through the real OpenSSH client.

The server is `tests.support.ssh_git_server` (asyncssh in front of the real git-upload-pack);
registries are read through the operator's mirror and fetched by the init container's command.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitstage.adapters.git.credentials import GitCredentials, git_environment
from gitstage.adapters.mirror.remote_mirror import MirrorError, RemoteMirror
from gitstage.cli.main import cli
from tests.fetch.test_api_remote import git
from tests.support.ssh_git_server import SshGitServer, SshKeyPair

pytestmark = [
    pytest.mark.skipif(
        subprocess.run(["which", "ssh"], capture_output=True, check=False).returncode != 0,
        reason="the OpenSSH client is not installed",
    ),
]


@pytest.fixture(scope="module")
def client_key() -> SshKeyPair:
    return SshKeyPair.generate()


@pytest.fixture
def ssh_server(tmp_path: Path, client_key: SshKeyPair) -> Iterator[tuple[SshGitServer, str]]:
    root = tmp_path / "srv"
    root.mkdir()
    bare = root / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "artifacts.yaml").write_text("churn:\n  path: model.txt\n")
    (work / "model.txt").write_text("weights v1")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "v1")
    commit = git(work, "rev-parse", "HEAD")
    git(work, "tag", "-a", "churn@v1.0.0", "-m", "r", date=1_700_000_100)
    git(work, "tag", "-a", "churn#prod#1", "-m", "a", date=1_700_000_200)
    git(work, "push", "-q", str(bare), "main", "--tags")
    with SshGitServer(root, [client_key]) as server:
        yield server, commit


def credentials(key: SshKeyPair, known_hosts: str | None) -> GitCredentials:
    return GitCredentials(ssh_key=key.private_openssh, known_hosts=known_hosts)


def test_mirror_reads_a_registry_over_ssh(
    ssh_server: tuple[SshGitServer, str], client_key: SshKeyPair, tmp_path: Path
) -> None:
    server, commit = ssh_server
    mirror = RemoteMirror(
        server.url("registry.git"), credentials(client_key, server.known_hosts), tmp_path / "m"
    )
    assert mirror.sync().changed
    assert not mirror.sync().changed
    churn = mirror.registry().state.artifacts["churn"]
    assert churn.versions[0].commit == commit
    assert server.stats.refused_keys == 0
    assert server.stats.commands.count("git-upload-pack") >= 2


def test_an_unknown_key_is_refused_without_showing_it(
    ssh_server: tuple[SshGitServer, str], tmp_path: Path
) -> None:
    server, _ = ssh_server
    stranger = SshKeyPair.generate()
    mirror = RemoteMirror(
        server.url("registry.git"), credentials(stranger, server.known_hosts), tmp_path / "m"
    )
    with pytest.raises(MirrorError) as failed:
        mirror.sync()
    assert failed.value.reason == "AuthenticationFailed"
    assert failed.value.permanent
    assert "PRIVATE KEY" not in str(failed.value)
    assert "\n" not in str(failed.value)
    assert server.stats.refused_keys >= 1


@pytest.mark.parametrize("known_hosts", [None, "[127.0.0.1]:1 ssh-ed25519 AAAAC3Nza\n", "wrong"])
def test_host_keys_are_always_checked(
    ssh_server: tuple[SshGitServer, str],
    client_key: SshKeyPair,
    tmp_path: Path,
    known_hosts: str | None,
) -> None:
    server, _ = ssh_server
    if known_hosts == "wrong":
        # The right host and port, another server's key: a man in the middle.
        other = SshGitServer(tmp_path, [client_key])
        known_hosts = f"[127.0.0.1]:{server.port} " + other.known_hosts.split(" ", 1)[1]
    mirror = RemoteMirror(
        server.url("registry.git"), credentials(client_key, known_hosts), tmp_path / "m"
    )
    with pytest.raises(MirrorError) as failed:
        mirror.sync()
    assert failed.value.reason == "HostKeyUnknown"
    assert str(failed.value) == (
        f"ls-remote {server.url('registry.git').replace('git@', '***@')}: "
        "host key is not in the known_hosts given"
    )
    assert server.stats.sessions == 0


def test_key_files_are_private_and_ssh_ignores_user_config(tmp_path: Path) -> None:
    key = SshKeyPair.generate()
    env = git_environment({}, credentials(key, "host-line\n"), tmp_path)
    command = env["GIT_SSH_COMMAND"]
    assert "-F /dev/null" in command
    assert "StrictHostKeyChecking=yes" in command
    assert key.private_openssh not in command
    [folder] = tmp_path.glob("ssh-*")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("identity", "known_hosts"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert (folder / "identity").read_text() == key.private_openssh
    assert "ssh_key=***" in repr(credentials(key, None))
    assert key.private_openssh not in repr(credentials(key, None))


def test_fetch_command_over_ssh_with_credentials_from_the_environment(
    ssh_server: tuple[SshGitServer, str], client_key: SshKeyPair, tmp_path: Path
) -> None:
    server, commit = ssh_server
    env = {
        "GITSTAGE_GIT_SSH_KEY": client_key.private_openssh,
        "GITSTAGE_GIT_KNOWN_HOSTS": server.known_hosts,
        "HOME": str(tmp_path),
    }
    dest = tmp_path / "model"
    args = ["fetch", "--artifact", "churn", "--repo", server.url("registry.git"), "--rev", commit]
    result = CliRunner().invoke(cli, [*args, "--dest", str(dest), "--no-progress"], env=env)
    assert result.exit_code == 0, result.output
    assert (dest / "model.txt").read_text() == "weights v1"

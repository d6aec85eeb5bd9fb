"""The image, run as the chart runs it (uid 10001, read-only root, /tmp an emptyDir, no
capabilities): the tools every feature calls are there, it holds this checkout's code, the
fetcher command fetches over a path, smart HTTP and SSH, and signed-tag policies verify.

The containers are started with runc on the image's root filesystem from buildah's store.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitstage import __version__
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from gitstage.dev.images import REPO_ROOT, ImageConfig
from tests.fetch.test_api_remote import git
from tests.support.oci import IMAGE_USER, Bind, run_in_rootfs
from tests.support.ssh_git_server import SshGitServer, SshKeyPair
from tests.write.test_policy import ssh_key
from tests.write.test_policy_gpg import gpg_key

pytestmark = pytest.mark.image

AUTH = BasicAuth("fetcher", "s3cret-Pa55")
SITE_PACKAGES = Path("usr/local/lib/python3.11/site-packages")
RULE = "(rules.prod.signed_by in .gitstage/policy.yaml)"


@dataclass(frozen=True)
class Registry:
    bare: Path  # owned by the image's user, as a volume of the pod would be
    commit: str
    model: bytes


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """One version of `churn`, assigned to prod twice: by an SSH-signed and a GPG-signed tag, as
    the committed policy requires."""
    base = tmp_path_factory.mktemp("registry")
    work = base / "work"
    git(base, "init", "-q", "-b", "main", str(work))
    release = ssh_key(base / "release", "release")
    gpg = gpg_key(work / ".gnupg", "Release <gpg-release@example.com>")  # git's gpg finds it
    model = random.Random(7).randbytes(200_000)
    files = {
        "artifacts.yaml": b"churn:\n  type: model\n  path: model.bin\n",
        "model.bin": model,
        ".gitstage/policy.yaml": (
            "stages: [prod]\nrules:\n  prod:\n"
            f"    signed_by: [release@example.com, {gpg.fingerprint}]\n"
        ).encode(),
        ".gitstage/allowed_signers": b"release@example.com "
        + release.with_suffix(".pub").read_bytes(),
        ".gitstage/keyring.gpg": gpg.public_armored.encode(),
    }
    for name, data in files.items():
        (work / name).parent.mkdir(exist_ok=True)
        (work / name).write_bytes(data)
    git(work, "add", *files)
    git(work, "commit", "-qm", "v1")
    commit = git(work, "rev-parse", "HEAD")
    git(work, "tag", "-a", "churn@v1.0.0", "-m", "register", date=1_700_000_100)
    ssh_signed = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={release}"]
    git(work, *ssh_signed, "tag", "-s", "churn#prod#1", "-m", "promote", date=1_700_000_200)
    gpg_signed = ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={gpg.fingerprint}"]
    git(work, *gpg_signed, "tag", "-s", "churn#prod#2", "-m", "promote", date=1_700_000_300)
    subprocess.run(["gpgconf", "--homedir", str(gpg.home), "--kill", "gpg-agent"], check=False)
    bare = base / "registry.git"
    git(base, "clone", "-q", "--bare", str(work), str(bare))
    _chown(bare)
    return Registry(bare, commit, model)


def _chown(path: Path) -> None:
    for current, dirs, files in os.walk(path):
        for name in [Path(current), *(Path(current) / entry for entry in dirs + files)]:
            os.chown(name, *IMAGE_USER)


def run(rootfs: Path, config: ImageConfig, *argv: str, **kwargs: object) -> str:
    """A command (not the entrypoint) in the container; its stdout and stderr, checked."""
    result = run_in_rootfs(rootfs, config, argv, entrypoint=False, **kwargs)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_it_runs_as_the_chart_user_on_a_read_only_root(rootfs: Path, config: ImageConfig) -> None:
    assert run(rootfs, config, "id", "-un").strip() == "gitstage"
    assert run(rootfs, config, "sh", "-c", "id -u; id -g").split() == ["10001", "10001"]
    refused = run_in_rootfs(rootfs, config, ["touch", "/usr/local/x"], entrypoint=False)
    assert "Read-only file system" in refused.stderr
    assert run(rootfs, config, "sh", "-c", "touch /tmp/x && echo $HOME").strip() == "/tmp"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["gitstage", "--version"], f"gitstage, version {__version__}"),
        (["git", "--version"], "git version 2.39"),
        (["ssh", "-V"], "OpenSSH_9.2"),  # SSH sources
        (["gpg", "--version"], "gpg (GnuPG) 2.2"),  # GPG-signed tags: dearmoring the keyring
        (["gpgv", "--version"], "gpgv (GnuPG) 2.2"),  # and verifying
        (["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/tmp/k"], ""),  # SSH-signed tags
        (["python", "-c", "import boto3; print(boto3.__name__)"], "boto3"),  # S3 DVC remotes
        (
            ["python", "-c", "import ssl; print(ssl.create_default_context().cert_store_stats())"],
            "'x509_ca': 1",  # the system's CA bundle, loaded by default: over a hundred CAs
        ),
    ],
    ids=["gitstage", "git", "ssh", "gpg", "gpgv", "ssh-keygen", "boto3", "ca-certificates"],
)
def test_the_tools_features_call_are_there(
    rootfs: Path, config: ImageConfig, argv: list[str], expected: str
) -> None:
    assert expected in run(rootfs, config, *argv)


def test_it_holds_this_checkouts_code(rootfs: Path) -> None:
    """Every module of the package, byte for byte (a stale build layer would show here)."""
    source = REPO_ROOT / "operator" / "gitstage"
    installed = rootfs / SITE_PACKAGES / "gitstage"

    def digests(root: Path) -> dict[str, str]:
        return {
            str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in root.rglob("*.py")
        }

    assert digests(installed) == digests(source)


@dataclass(frozen=True)
class Source:
    url: str
    env: dict[str, str]


@pytest.fixture(params=["path", "http", "ssh"])
def source(request: pytest.FixtureRequest, registry: Registry, tmp_path: Path) -> Iterator[Source]:
    """The registry as the fetcher reaches it: a mounted path, smart HTTP with basic auth, SSH
    with a key and known_hosts (the variables the operator sets from the source Secret)."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copytree(registry.bare, served / "registry.git")
    if request.param == "path":
        yield Source("/srv/registry.git", {})
    elif request.param == "http":
        with GitHttpServer(served, auth=AUTH) as server:
            credentials = {
                "GITSTAGE_GIT_USERNAME": AUTH.username,
                "GITSTAGE_GIT_PASSWORD": AUTH.password,
            }
            yield Source(server.url("registry.git"), credentials)
    else:
        key = SshKeyPair.generate()
        with SshGitServer(served, [key]) as server:
            credentials = {
                "GITSTAGE_GIT_SSH_KEY": key.private_openssh,
                "GITSTAGE_GIT_KNOWN_HOSTS": server.known_hosts,
            }
            yield Source(server.url("registry.git"), credentials)


def test_the_fetcher_fetches_the_artifact(
    rootfs: Path, config: ImageConfig, registry: Registry, source: Source, tmp_path: Path
) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    os.chown(dest, *IMAGE_USER)  # the pod's emptyDir
    env = {
        "GITSTAGE_FETCH_REPO": source.url,
        "GITSTAGE_FETCH_REV": registry.commit,
        "GITSTAGE_FETCH_ARTIFACT": "churn",
        "GITSTAGE_FETCH_VERSION": "v1.0.0",
        "GITSTAGE_FETCH_STAGE": "prod",
        "GITSTAGE_FETCH_DEST": "/model",
        **source.env,
    }
    binds = [Bind(registry.bare, "/srv/registry.git"), Bind(dest, "/model", writable=True)]
    result = run_in_rootfs(rootfs, config, ["fetch"], env=env, binds=binds)
    assert (result.returncode, result.stdout) == (0, "/model/model.bin\n"), result.stderr
    assert (dest / "model.bin").read_bytes() == registry.model
    assert (dest / ".gitstage-manifest.json").is_file()


def test_signed_assignments_verify_and_an_unsigned_one_is_reported(
    rootfs: Path, config: ImageConfig, registry: Registry, tmp_path: Path
) -> None:
    """`gitstage check` runs ssh-keygen -Y verify and gpgv inside the image."""
    bare = tmp_path / "registry.git"
    shutil.copytree(registry.bare, bare)
    _chown(bare)
    binds = [Bind(bare, "/srv/registry.git")]
    passed = run_in_rootfs(rootfs, config, ["check", "-r", "/srv/registry.git"], binds=binds)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "0 problems" in passed.stderr
    assert "2 assignments checked against the policy" in passed.stderr

    tag = ["-c", "safe.directory=*", "tag", "-a", "churn#prod#3", "-m", "forged", registry.commit]
    git(bare, *tag, date=1_700_000_400)
    failed = run_in_rootfs(rootfs, config, ["check", "-r", "/srv/registry.git"], binds=binds)
    assert failed.returncode == 1, failed.stderr
    assert "churn#prod#3" in failed.stdout
    assert RULE in failed.stdout

"""The promotion policy with real OpenPGP signatures: tags signed by `git tag -s` with gpg are
verified by fingerprint against the keyring committed in the registry."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.scratch import When
from tests.write.conftest import Registry

RULE = "(rules.prod.signed_by in .gitstage/policy.yaml)"


@dataclass(frozen=True)
class GpgKey:
    home: Path
    fingerprint: str

    def gpg(self, *args: str) -> bytes:
        command = ["gpg", "--batch", "--homedir", str(self.home), *args]
        return subprocess.run(command, check=True, capture_output=True).stdout

    @property
    def public_armored(self) -> str:
        return self.gpg("--armor", "--export", self.fingerprint).decode()


def gpg_key(home: Path, uid: str) -> GpgKey:
    """A passphrase-less ed25519 signing key in its own GNUPGHOME."""
    home.mkdir(mode=0o700)
    command = ["gpg", "--batch", "--homedir", str(home), "--passphrase", ""]
    subprocess.run(
        [*command, "--quick-gen-key", uid, "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [*command, "--with-colons", "--list-secret-keys", uid],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    return GpgKey(home, fingerprint)


@pytest.fixture
def release(tmp_path: Path) -> GpgKey:
    return gpg_key(tmp_path / "release-gnupg", "Release <release@example.com>")


@pytest.fixture
def mallory(tmp_path: Path) -> GpgKey:
    return gpg_key(tmp_path / "mallory-gnupg", "Mallory <mallory@example.com>")


def policy(fingerprint: str) -> str:
    return f"stages: [staging, prod]\nrules:\n  prod:\n    signed_by: [{fingerprint}]\n"


def sign_tag(registry: Registry, key: GpgKey, name: str, target: str) -> None:
    """`git tag -s` exactly as a release engineer runs it, with gpg and the key's GNUPGHOME."""
    registry.repo.config["gpg.format"] = "openpgp"
    registry.repo.config["user.signingkey"] = key.fingerprint
    subprocess.run(
        ["git", "-C", str(registry.path), "tag", "-s", name, "-m", "promote", target],
        check=True,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(key.home)},
    )


def check(registry: Registry) -> tuple[int, list[str]]:
    result = registry.gs("check")
    return result.code, result.out.splitlines()


def test_a_gpg_signed_prod_tag_complies_and_other_signers_do_not(
    registry: Registry, release: GpgKey, mallory: GpgKey
) -> None:
    keyring = release.public_armored + mallory.public_armored  # both known, one trusted for prod
    registry.scratch.commit(
        {".gitstage/policy.yaml": policy(release.fingerprint), ".gitstage/keyring.gpg": keyring},
        When(next(registry.clock)),
    )
    registry.ok("register", "m", "--version", "v1.0.0")
    sign_tag(registry, release, "m#prod#1", "m@v1.0.0^{commit}")
    assert "-----BEGIN PGP SIGNATURE-----" in registry.tag("m#prod#1").message
    assert check(registry) == (0, [])

    sign_tag(registry, mallory, "m#prod#2", "m@v1.0.0^{commit}")
    code, lines = check(registry)
    assert code == 1
    assert lines == [
        f"tag m#prod#2: signed by {mallory.fingerprint}, but 'prod' requires a signature by "
        f"{release.fingerprint} {RULE}"
    ]


def test_a_gpg_signature_by_a_key_outside_the_keyring_does_not_verify(
    registry: Registry, release: GpgKey, mallory: GpgKey
) -> None:
    registry.scratch.commit(
        {
            ".gitstage/policy.yaml": policy(release.fingerprint),
            ".gitstage/keyring.gpg": release.public_armored,
        },
        When(next(registry.clock)),
    )
    registry.ok("register", "m", "--version", "v1.0.0")
    sign_tag(registry, mallory, "m#prod#1", "m@v1.0.0^{commit}")
    code, lines = check(registry)
    assert code == 1
    assert lines == [
        f"tag m#prod#1: the signature does not verify (gpg signature does not verify) {RULE}"
    ]

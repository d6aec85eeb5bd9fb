"""Tag signatures: sign with `ssh-keygen -Y sign`, verify with `ssh-keygen -Y verify` against an
allowed_signers file, or with `gpgv` against an OpenPGP keyring. Same format as `git tag -s`:
the armored signature follows the message, and covers the tag object up to it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitstage.adapters.git.reader import TAGS_PREFIX
from gitstage.domain.policy.rules import SignatureKind, SignatureStatus
from gitstage.domain.policy.tag_signature import SSH_MARKER, split_signed

ARMORED_KEYS = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
NAMESPACE = "git"
TIMEOUT_SECONDS = 60
_VALIDSIG_RE = re.compile(r"^\[GNUPG:\] VALIDSIG (?P<key>[0-9A-F]+) .* (?P<primary>[0-9A-F]+)$")


class SigningError(RuntimeError):
    """Signing failed; one line."""


@dataclass(frozen=True)
class TrustStore:
    """The keys the policy trusts, as read from the registry (None: no such file)."""

    allowed_signers: bytes | None = None
    gpg_keyring: bytes | None = None


class SshSigner:
    """Signs with an SSH key file (or its public half, the private key being in ssh-agent)."""

    def __init__(self, key_path: str | os.PathLike[str]) -> None:
        self.key_path = str(key_path)
        if not Path(self.key_path).is_file():
            raise SigningError(f"signing key {self.key_path} not found")

    def sign(self, payload: bytes) -> bytes:
        result = _run(
            ["ssh-keygen", "-q", "-Y", "sign", "-n", NAMESPACE, "-f", self.key_path], payload
        )
        if result.returncode != 0 or SSH_MARKER not in result.stdout:
            reason = _first_line(result.stderr) or f"exit code {result.returncode}"
            raise SigningError(f"ssh-keygen could not sign with {self.key_path}: {reason}")
        return result.stdout


def tag_signature(repo: pygit2.Repository, name: str, trust: TrustStore) -> SignatureStatus:
    """Verify the signature of tag `name`; lightweight and unsigned tags are UNSIGNED."""
    try:
        oid = repo.references[TAGS_PREFIX + name].target
    except KeyError:
        return SignatureStatus(SignatureKind.UNSIGNED, detail="no such tag")
    if not isinstance(oid, pygit2.Oid):
        return SignatureStatus(SignatureKind.UNSIGNED)
    kind, raw = repo.odb.read(oid)
    if kind != pygit2.enums.ObjectType.TAG:
        return SignatureStatus(SignatureKind.UNSIGNED, detail="lightweight tag")
    return verify_signature(raw, trust)


def verify_signature(raw: bytes, trust: TrustStore) -> SignatureStatus:
    payload, signature = split_signed(raw)
    if signature is None:
        return SignatureStatus(SignatureKind.UNSIGNED)
    with tempfile.TemporaryDirectory(prefix="gitstage-verify-") as scratch:
        work = Path(scratch)
        if signature.startswith(SSH_MARKER):
            return _verify_ssh(payload, signature, trust.allowed_signers, work)
        return _verify_gpg(payload, signature, trust.gpg_keyring, work)


def _verify_ssh(
    payload: bytes, signature: bytes, allowed: bytes | None, work: Path
) -> SignatureStatus:
    if allowed is None:
        return SignatureStatus(SignatureKind.INVALID, detail="no allowed_signers file")
    signers, sig = work / "allowed_signers", work / "tag.sig"
    signers.write_bytes(allowed)
    sig.write_bytes(signature)
    found = _run(["ssh-keygen", "-Y", "find-principals", "-s", str(sig), "-f", str(signers)], b"")
    principals = [p for p in found.stdout.decode(errors="replace").splitlines() if p.strip()]
    if found.returncode != 0 or not principals:
        return SignatureStatus(SignatureKind.INVALID, detail="key not in allowed_signers")
    verified = tuple(p for p in principals if _ssh_verifies(payload, sig, signers, p))
    if not verified:
        return SignatureStatus(SignatureKind.INVALID, detail="signature does not match the tag")
    return SignatureStatus(SignatureKind.VALID, verified)


def _ssh_verifies(payload: bytes, sig: Path, signers: Path, principal: str) -> bool:
    command = ["ssh-keygen", "-Y", "verify", "-n", NAMESPACE, "-f", str(signers)]
    command += ["-I", principal, "-s", str(sig)]
    return _run(command, payload).returncode == 0


def _verify_gpg(
    payload: bytes, signature: bytes, keyring: bytes | None, work: Path
) -> SignatureStatus:
    if keyring is None:
        return SignatureStatus(SignatureKind.INVALID, detail="no gpg keyring")
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    ring = work / "keyring.gpg"
    if keyring.lstrip().startswith(ARMORED_KEYS):
        dearmored = _run(["gpg", "--homedir", str(home), "--dearmor"], keyring)
        if dearmored.returncode != 0:
            return SignatureStatus(SignatureKind.INVALID, detail="unreadable gpg keyring")
        keyring = dearmored.stdout
    ring.write_bytes(keyring)
    data, sig = work / "tag.payload", work / "tag.asc"
    data.write_bytes(payload)
    sig.write_bytes(signature)
    command = ["gpgv", "--homedir", str(home), "--keyring", str(ring), "--status-fd", "1"]
    result = _run([*command, str(sig), str(data)], b"")
    fingerprints: list[str] = []
    for line in result.stdout.decode(errors="replace").splitlines():
        match = _VALIDSIG_RE.match(line.strip())
        if match:
            fingerprints += [match["key"], match["primary"]]
    if result.returncode != 0 or not fingerprints:
        return SignatureStatus(SignatureKind.INVALID, detail="gpg signature does not verify")
    return SignatureStatus(SignatureKind.VALID, tuple(dict.fromkeys(fingerprints)))


def _run(command: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            command, input=stdin, capture_output=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError:
        raise SigningError(f"{command[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"{command[0]} timed out") from None


def _first_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]
    return lines[0] if lines else ""

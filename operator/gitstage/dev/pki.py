"""Keys for a throwaway cluster: the service-account signing key and an admin token."""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "sa.key"
    public = directory / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def write_token_file(directory: Path) -> tuple[Path, str]:
    """A static token for `admin` in system:masters (used by every component and the tests)."""
    token = secrets.token_hex(16)
    path = directory / "tokens.csv"
    path.write_text(f'{token},admin,admin-uid,"system:masters"\n')
    path.chmod(0o600)
    return path, token


def kubeconfig(server: str, token: str, ca_file: Path) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: gitstage-dev
  cluster:
    server: {server}
    certificate-authority: {ca_file}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: gitstage-dev
  context:
    cluster: gitstage-dev
    user: admin
current-context: gitstage-dev
"""

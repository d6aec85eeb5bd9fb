"""Keys for a throwaway cluster: the service-account signing key, static tokens, and a CA with
the API server's serving certificate and the client certificate it presents to kubelets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


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


def add_token(path: Path, user: str, groups: list[str]) -> str:
    """Another static token (a node's kubelet, kube-proxy), appended to the token file."""
    token = secrets.token_hex(16)
    with path.open("a") as tokens:
        tokens.write(f'{token},{user},{user}-uid,"{",".join(groups)}"\n')
    return token


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


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def write_ca(directory: Path, name: str) -> CertPair:
    """A self-signed CA for a throwaway cluster (valid for a week)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        _builder(subject, subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return _write(directory, name, builder.sign(key, hashes.SHA256()), key)


def write_serving_cert(
    directory: Path, name: str, ca: CertPair, ips: list[str], dns: list[str]
) -> CertPair:
    """A server certificate signed by `ca` for these addresses and names."""
    sans: list[x509.GeneralName] = [x509.IPAddress(ip_address(ip)) for ip in ips]
    sans += [x509.DNSName(host) for host in dns]
    return _issue(
        directory,
        name,
        ca,
        name,
        [],
        x509.SubjectAlternativeName(sans),
        ExtendedKeyUsageOID.SERVER_AUTH,
    )


def write_client_cert(
    directory: Path, name: str, ca: CertPair, user: str, groups: list[str]
) -> CertPair:
    """A client certificate signed by `ca`: CN the user, O the groups, as Kubernetes reads them."""
    return _issue(directory, name, ca, user, groups, None, ExtendedKeyUsageOID.CLIENT_AUTH)


def _issue(  # noqa: PLR0917 - private, called twice with every argument named by position
    directory: Path,
    name: str,
    ca: CertPair,
    common_name: str,
    organizations: list[str],
    sans: x509.SubjectAlternativeName | None,
    usage: x509.ObjectIdentifier,
) -> CertPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = _builder(subject, ca_cert.subject, key.public_key()).add_extension(
        x509.ExtendedKeyUsage([usage]), critical=False
    )
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    return _write(directory, name, builder.sign(ca_key, hashes.SHA256()), key)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=7))
    )


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> CertPair:
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pair.key.chmod(0o600)
    return pair

"""HTTPS on loopback with a CA of the test's own, and an HTTP CONNECT proxy.

    ca = LoopbackCa.create(tmp_path)                 # ca.bundle: the PEM a client must trust
    with TlsFront(backend_port, ca) as front:    # https://127.0.0.1:PORT in front of plain HTTP
        front.url, front.connections
    with ConnectProxy() as proxy:                # HTTPS_PROXY=proxy.url
        proxy.tunnels                            # ["127.0.0.1:PORT", ...] in the order asked

Both relay bytes with asyncio in a thread of their own. The front terminates TLS with a server
certificate for 127.0.0.1 signed by the test CA, so only a client given `ca.bundle` accepts it;
closing a TLS stream sends close_notify, as a real server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
CHUNK = 65536


@dataclass(frozen=True)
class LoopbackCa:
    """A certificate authority and one server certificate it signed, as PEM files."""

    bundle: Path  # the CA certificate: what GITSTAGE_CA_BUNDLE names
    server_certificate: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path) -> LoopbackCa:
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitstage test CA")])
        ca_cert = (
            _builder(ca_name, ca_name, ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
        names = [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
        server_cert = (
            _builder(server_name, ca_name, server_key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        bundle = directory / "ca.pem"
        bundle.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        certificate = directory / "server.pem"
        certificate.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        key = directory / "server.key"
        key.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cls(bundle, certificate, key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_certificate, self.server_key)
        return context


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey) -> Any:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Relay:
    """An asyncio server on a loopback port, run by a loop in a daemon thread."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._handler = handler
        self._tls = tls
        self._server: asyncio.Server | None = None
        self.port = 0

    def __enter__(self) -> _Relay:
        self._thread.start()
        started: Future[asyncio.Server] = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handler, LOOPBACK, 0, ssl=self._tls), self._loop
        )
        self._server = started.result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass  # the peer went away: close the other side too
    finally:
        with contextlib.suppress(OSError):  # the other side may be gone already
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()  # TLS: close_notify


async def _splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter], port: int) -> None:
    upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, port)
    await asyncio.gather(_pipe(client[0], upstream_writer), _pipe(upstream_reader, client[1]))
    upstream_writer.close()
    client[1].close()


class TlsFront(_Relay):
    """HTTPS in front of a plain HTTP server on loopback `backend_port`."""

    def __init__(self, backend_port: int, ca: LoopbackCa) -> None:
        super().__init__(self._serve, ca.server_context())
        self._backend_port = backend_port
        self.connections = 0  # TLS handshakes that succeeded

    def __enter__(self) -> TlsFront:
        super().__enter__()
        return self

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await _splice((reader, writer), self._backend_port)


class ConnectProxy(_Relay):
    """An HTTP proxy that only tunnels (CONNECT), to loopback only; records each tunnel."""

    def __init__(self) -> None:
        super().__init__(self._serve)
        self.tunnels: list[str] = []

    def __enter__(self) -> ConnectProxy:
        super().__enter__()
        return self

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host != LOOPBACK:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), int(port))

"""HTTPS on loopback with a CA of the test's own, and an HTTP CONNECT proxy.

    ca = LoopbackCa.create(tmp_path)             # ca.bundle: the PEM a client must trust
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
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gitstage.dev.pki import write_ca, write_serving_cert
from tests.support.background import BackgroundServer

LOOPBACK = "127.0.0.1"
CHUNK = 65536


@dataclass(frozen=True)
class LoopbackCa:
    """A certificate authority and one server certificate it signed (for 127.0.0.1 and
    localhost), as PEM files: the local cluster's own PKI helpers make them."""

    bundle: Path  # the CA certificate: what GITSTAGE_CA_BUNDLE names
    server_certificate: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path) -> LoopbackCa:
        directory.mkdir(parents=True, exist_ok=True)
        ca = write_ca(directory, "gitstage-test-ca")
        server = write_serving_cert(directory, "server", ca, [LOOPBACK], ["localhost"])
        return cls(ca.cert, server.cert, server.key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_certificate, self.server_key)
        return context


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _AsyncioServing:
    """An asyncio server as BackgroundServer runs one: `serve_forever` in its thread. The socket
    is bound at once, so the port is known before the thread starts."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None) -> None:
        self.socket = socket.create_server((LOOPBACK, 0))
        self._loop = asyncio.new_event_loop()
        self._handler = handler
        self._tls = tls

    def serve_forever(self) -> None:
        asyncio.set_event_loop(self._loop)
        started = asyncio.start_server(self._handler, sock=self.socket, ssl=self._tls)
        server = self._loop.run_until_complete(started)
        self._loop.run_forever()
        server.close()
        relays = asyncio.all_tasks(self._loop)  # connections still open: end them
        for relay in relays:
            relay.cancel()
        self._loop.run_until_complete(asyncio.gather(*relays, return_exceptions=True))
        self._loop.close()

    def shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def server_close(self) -> None:
        """The serving thread closes the socket with the server."""


class _Relay(BackgroundServer):
    """An asyncio server on a loopback port, in a daemon thread."""

    scheme = "http"

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        serving = _AsyncioServing(handler, tls)
        self.port = int(serving.socket.getsockname()[1])
        super().__init__(serving)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"


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

    scheme = "https"

    def __init__(self, backend_port: int, ca: LoopbackCa) -> None:
        super().__init__(self._serve, ca.server_context())
        self._backend_port = backend_port
        self.connections = 0  # TLS handshakes that succeeded

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await _splice((reader, writer), self._backend_port)


class ConnectProxy(_Relay):
    """An HTTP proxy that only tunnels (CONNECT), to loopback only; records each tunnel."""

    def __init__(self) -> None:
        super().__init__(self._serve)
        self.tunnels: list[str] = []

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
